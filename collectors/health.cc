#include "collectors/health.h"

#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace devscope {
namespace {

constexpr absl::string_view kTemperatureSample = "devscope_device_temperature_celsius";

// Only "does not exist" counts as missing: a node we may not stat (EACCES) is still there.
bool IsMissing(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) return false;
  return errno == ENOENT || errno == ENOTDIR;
}

}  // namespace

void DeclareOptions(OptionDeclarer& d, HealthOptions& o) {
  d.Key("health.max_temperature_celsius", o.max_temperature_celsius,
        "Hotter than this, a device is reported and advertised Unhealthy");
}

HealthVerdict HealthModel::Decide(const DeviceReport& report) const {
  std::vector<std::string> reasons;
  if (!report.health.healthy) {
    reasons.push_back(report.health.reason.empty() ? "collector says unhealthy"
                                                   : report.health.reason);
  }
  for (const AllocateSpec::DeviceNode& node : report.info.allocate.device_nodes) {
    if (IsMissing(roots_.DevfsPath(node.host_path))) {
      reasons.push_back(absl::StrCat("device node ", node.host_path, " missing"));
    }
  }
  if (options_.max_temperature_celsius.has_value()) {
    const double limit = *options_.max_temperature_celsius;
    for (const Sample& sample : report.samples) {
      // NaN compares false: an unknown temperature is not a hot one.
      if (sample.name == kTemperatureSample && sample.value > limit) {
        reasons.push_back(absl::StrFormat("temperature %g C over %g C", sample.value, limit));
        break;
      }
    }
  }
  if (reasons.empty()) return {};
  return {false, absl::StrJoin(reasons, "; ")};
}

void HealthModel::Apply(DeviceReport& report) const {
  HealthVerdict verdict = Decide(report);
  report.health.healthy = verdict.healthy;
  report.health.reason = std::move(verdict.reason);
}

}  // namespace devscope
