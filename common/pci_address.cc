#include "common/pci_address.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace devscope {
namespace {

bool AllHex(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isxdigit(c)) return false;
  }
  return true;
}

}  // namespace

std::optional<std::string> NormalizePciAddress(absl::string_view text) {
  absl::string_view domain = "0000";
  absl::string_view rest = text;  // BB:DD.F
  const size_t first = text.find(':');
  if (first == absl::string_view::npos) return std::nullopt;
  if (text.find(':', first + 1) != absl::string_view::npos) {
    domain = text.substr(0, first);
    rest = text.substr(first + 1);
    if (domain.size() > 8 || !AllHex(domain)) return std::nullopt;
    // Keep the low four digits when NVML pads the domain to eight.
    while (domain.size() > 4 && domain[0] == '0') domain.remove_prefix(1);
    if (domain.size() > 4) return std::nullopt;
  }
  if (rest.size() != 7 || rest[2] != ':' || rest[5] != '.' || !AllHex(rest.substr(0, 2)) ||
      !AllHex(rest.substr(3, 2)) || rest[6] < '0' || rest[6] > '7') {
    return std::nullopt;
  }
  return absl::AsciiStrToLower(
      absl::StrCat(std::string(4 - domain.size(), '0'), domain, ":", rest));
}

}  // namespace devscope
