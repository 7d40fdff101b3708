#include "common/resource_name.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/log.h"

namespace devscope {
namespace {

constexpr absl::string_view kRequestsPrefix = "requests.";
constexpr size_t kMaxSubdomain = 253;
constexpr size_t kMaxNamePart = 63;
constexpr size_t kMaxLabel = 63;

bool IsLowerAlnum(char c) { return absl::ascii_isdigit(c) || (c >= 'a' && c <= 'z'); }

// DNS-1123 label: [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 characters.
bool IsDnsLabel(absl::string_view label) {
  if (label.empty() || label.size() > kMaxLabel) return false;
  if (!IsLowerAlnum(label.front()) || !IsLowerAlnum(label.back())) return false;
  for (char c : label) {
    if (!IsLowerAlnum(c) && c != '-') return false;
  }
  return true;
}

bool IsNameChar(char c) { return absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.'; }

}  // namespace

absl::Status ValidateResourceName(absl::string_view name) {
  auto invalid = [name](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("resource name ", QuoteForLog(name),
                                                   " is not a valid extended resource: ", why));
  };
  if (name.empty()) return invalid("it is empty");
  if (absl::StartsWith(name, kRequestsPrefix)) {
    return invalid("it must not start with \"requests.\"");
  }
  std::vector<absl::string_view> parts = absl::StrSplit(name, '/');
  if (parts.size() != 2) {
    return invalid(parts.size() < 2 ? "it needs a domain prefix and a '/' (e.g. example.com/widget)"
                                    : "it must contain exactly one '/'");
  }
  absl::string_view prefix = parts[0];
  absl::string_view part = parts[1];
  if (absl::StrContains(name, "kubernetes.io/")) {
    return invalid("the kubernetes.io domain and its subdomains are reserved for native resources");
  }
  if (prefix.empty()) return invalid("the prefix before '/' is empty");
  // The kubelet validates "requests." + name, so the prefix it sees is 9 characters longer.
  if (prefix.size() + kRequestsPrefix.size() > kMaxSubdomain) {
    return invalid(absl::StrFormat("the prefix is longer than %d characters",
                                   kMaxSubdomain - kRequestsPrefix.size()));
  }
  for (absl::string_view label : absl::StrSplit(prefix, '.')) {
    if (!IsDnsLabel(label)) {
      return invalid(
          "the prefix must be a DNS subdomain (lower-case letters, digits, '-' and '.', each "
          "label starting and ending with a letter or digit)");
    }
  }
  if (part.empty()) return invalid("the name after '/' is empty");
  if (part.size() > kMaxNamePart) {
    return invalid(
        absl::StrFormat("the name after '/' is longer than %d characters", kMaxNamePart));
  }
  if (!absl::ascii_isalnum(part.front()) || !absl::ascii_isalnum(part.back())) {
    return invalid("the name after '/' must start and end with a letter or digit");
  }
  for (char c : part) {
    if (!IsNameChar(c)) {
      return invalid("the name after '/' may only hold letters, digits, '-', '_' and '.'");
    }
  }
  return absl::OkStatus();
}

}  // namespace devscope
