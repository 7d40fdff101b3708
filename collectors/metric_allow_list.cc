#include "collectors/metric_allow_list.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace devscope {
namespace {

bool IsMetricNameChar(char c) { return absl::ascii_isalnum(c) || c == '_' || c == ':'; }

}  // namespace

absl::StatusOr<std::vector<std::string>> ParseMetricAllowList(absl::string_view text) {
  std::vector<std::string> names;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    const absl::string_view name = absl::StripAsciiWhitespace(part);
    if (name.empty()) continue;
    if (!absl::StartsWith(name, "devscope_device_") ||
        !std::all_of(name.begin(), name.end(), IsMetricNameChar)) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", name, "\" is not a device metric name (devscope_device_...)"));
    }
    names.emplace_back(name);
  }
  return names;
}

AllowListedCollector::AllowListedCollector(std::unique_ptr<Collector> inner,
                                           const std::vector<std::string>& names)
    : inner_(std::move(inner)), allowed_(names.begin(), names.end()) {}

absl::StatusOr<std::vector<DeviceReport>> AllowListedCollector::Collect() {
  absl::StatusOr<std::vector<DeviceReport>> devices = inner_->Collect();
  if (!devices.ok()) return devices;
  for (DeviceReport& device : *devices) {
    std::vector<Sample>& samples = device.samples;
    samples.erase(std::remove_if(samples.begin(), samples.end(),
                                 [&](const Sample& s) { return !allowed_.contains(s.name); }),
                  samples.end());
  }
  return devices;
}

}  // namespace devscope
