#include "exporter/dra_match.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/pci_address.h"
#include "re2/re2.h"

namespace devscope {
namespace {

constexpr absl::string_view kNvidiaDriver = "gpu.nvidia.com";
constexpr absl::string_view kIntelGpuDriver = "gpu.intel.com";

bool AllOf(absl::string_view s, bool (*pred)(unsigned char)) {
  for (char c : s) {
    if (!pred(static_cast<unsigned char>(c))) return false;
  }
  return !s.empty();
}

bool IsHex(absl::string_view s) { return AllOf(s, absl::ascii_isxdigit); }
bool IsDigits(absl::string_view s) { return AllOf(s, absl::ascii_isdigit); }

// 8-4-4-4-12 hex digits.
bool IsBareUuid(absl::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !absl::ascii_isxdigit(s[i])) return false;
  }
  return true;
}

// A UUID with what NVIDIA and the drivers put around one: a prefix of letters and dashes
// ("GPU-", "MIG-", "MIG-GPU-", "gpu-") and NVIDIA's old MIG suffix "/GI/CI". Linear in the
// length: a claim may list many CDI devices, and the join runs on every render.
bool CarriesUuid(absl::string_view s) {
  absl::string_view uuid_end = s;
  if (const size_t last = s.rfind('/'); last != absl::string_view::npos) {
    const size_t before = last == 0 ? absl::string_view::npos : s.rfind('/', last - 1);
    if (before == absl::string_view::npos || !IsDigits(s.substr(before + 1, last - before - 1)) ||
        !IsDigits(s.substr(last + 1))) {
      return false;
    }
    uuid_end = s.substr(0, before);
  }
  if (uuid_end.size() < 36) return false;
  const absl::string_view prefix = uuid_end.substr(0, uuid_end.size() - 36);
  for (char c : prefix) {
    if (!absl::ascii_isalpha(c) && c != '-') return false;
  }
  return IsBareUuid(uuid_end.substr(prefix.size()));
}

// Intel's "DDDD-BB-DD-F-0xPCIID" (and the same without the device ID) -> "DDDD:BB:DD.F".
std::string IntelPciAddress(absl::string_view name) {
  const std::vector<absl::string_view> parts = absl::StrSplit(name, '-');
  if (parts.size() < 4 || parts.size() > 5) return {};
  if (parts[0].size() != 4 || parts[1].size() != 2 || parts[2].size() != 2 ||
      parts[3].size() != 1 || !IsHex(parts[0]) || !IsHex(parts[1]) || !IsHex(parts[2]) ||
      !IsHex(parts[3])) {
    return {};
  }
  if (parts.size() == 5 && !(absl::StartsWith(parts[4], "0x") && IsHex(parts[4].substr(2)))) {
    return {};
  }
  return NormalizePciAddress(absl::StrCat(parts[0], ":", parts[1], ":", parts[2], ".", parts[3]))
      .value_or("");
}

}  // namespace

std::vector<std::string> DraNamesOf(const DeviceInfo& info) {
  std::vector<std::string> names;
  if (info.vendor == "NVIDIA" && info.minor.has_value()) {
    if (info.mig.has_value()) {
      names.push_back(absl::StrCat(kNvidiaDriver, "/gpu-", *info.minor, "-mig-",
                                   info.mig->profile_id, "-", info.mig->start, "-",
                                   info.mig->size));
    } else {
      names.push_back(absl::StrCat(kNvidiaDriver, "/gpu-", *info.minor));
    }
  }
  return names;
}

std::vector<std::string> ConventionCandidates(const ClaimDevice& device) {
  std::vector<std::string> ids;
  if (device.driver == kIntelGpuDriver) {
    if (std::string pci = IntelPciAddress(device.device); !pci.empty()) {
      ids.push_back(std::move(pci));
    } else if (absl::StartsWith(device.device, "card") && IsDigits(device.device.substr(4))) {
      ids.push_back(device.device);
    }
  }
  return ids;
}

std::vector<std::string> IdentifierCandidates(const ClaimDevice& device) {
  std::vector<std::string> ids;
  const auto consider = [&ids](absl::string_view name) {
    if (CarriesUuid(name) || NormalizePciAddress(name).has_value()) ids.emplace_back(name);
  };
  consider(device.device);
  for (const std::string& cdi : device.cdi_devices) {
    // vendor/class=name: only the name identifies a device.
    const size_t eq = cdi.find('=');
    if (eq != std::string::npos) consider(absl::string_view(cdi).substr(eq + 1));
  }
  return ids;
}

void DeclareOptions(OptionDeclarer& d, DraAliasRule& o) {
  d.Key("device_pattern", o.device_pattern,
        "RE2 pattern a device name of the driver must match whole, e.g. nic-(.+)");
  d.Key("id", o.id,
        "The ID or alias of the tracked device such a name is, \\1 to \\9 standing for the "
        "pattern's groups, e.g. \\1");
}

void DeclareOptions(OptionDeclarer& d, DraOptions& o) {
  d.Key("dra.aliases", MapValue(o.rules, &DeclareOptions, "DRIVER"),
        "DRA alias rules, by driver name: which tracked device a DRA device of that driver is, "
        "tried before devscope's own matching (docs/interface.md, DRA devices)")
      .Check([&o] { return DraMatcher::Create(o).status(); });
}

absl::StatusOr<std::shared_ptr<const DraMatcher>> DraMatcher::Create(const DraOptions& options) {
  std::map<std::string, Rule, std::less<>> rules;
  for (const auto& [driver, rule] : options.rules) {
    RE2::Options re_options;
    re_options.set_log_errors(false);
    // Anchored: the pattern is for the whole device name.
    auto pattern =
        std::make_shared<RE2>(absl::StrCat("^(?:", rule.device_pattern, ")$"), re_options);
    if (!pattern->ok()) {
      return absl::InvalidArgumentError(absl::StrCat("DRA alias rule for driver ", driver,
                                                     ": device_pattern: ", pattern->error()));
    }
    std::string error;
    if (rule.id.empty() || !pattern->CheckRewriteString(rule.id, &error)) {
      return absl::InvalidArgumentError(
          absl::StrCat("DRA alias rule for driver ", driver,
                       ": id: ", rule.id.empty() ? "must not be empty" : error));
    }
    rules.emplace(driver, Rule{std::move(pattern), rule.id});
  }
  return std::shared_ptr<const DraMatcher>(new DraMatcher(std::move(rules)));
}

std::vector<std::string> DraMatcher::Candidates(const ClaimDevice& device) const {
  std::vector<std::string> ids;
  if (auto rule = rules_.find(device.driver); rule != rules_.end()) {
    std::string id;
    if (RE2::Extract(device.device, *rule->second.pattern, rule->second.id, &id) && !id.empty()) {
      ids.push_back(std::move(id));
    }
  }
  ids.push_back(absl::StrCat(device.driver, "/", device.pool, "/", device.device));
  ids.push_back(absl::StrCat(device.driver, "/", device.device));
  for (std::string& id : ConventionCandidates(device)) ids.push_back(std::move(id));
  for (std::string& id : IdentifierCandidates(device)) ids.push_back(std::move(id));
  return ids;
}

}  // namespace devscope
