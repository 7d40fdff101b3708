// The health model: the one place that decides a device's final health from what its collector
// saw (collectors/collector.h HealthSignal: a devicedir health file, an XID, a link down) and the
// configured checks. The runner applies it before publishing, so the device plugin and
// devscope_device_healthy read the same verdict.
#ifndef DEVSCOPE_COLLECTORS_HEALTH_H_
#define DEVSCOPE_COLLECTORS_HEALTH_H_

#include <string>

#include "collectors/collector.h"
#include "common/config.h"

namespace devscope {

struct HealthVerdict {
  bool healthy = true;
  std::string reason;  // every reason it is unhealthy, joined with "; "; empty when healthy
  bool operator==(const HealthVerdict&) const = default;
};

// Decides from, in this order: the collector's raw signal; each of info.allocate.device_nodes
// that is missing (a /dev/... path is looked up under config.devfs, other absolute paths as
// given); any devscope_device_temperature_celsius sample above config.max_temperature_celsius.
HealthVerdict DecideHealth(const DeviceReport& report, const Config& config);

// Replaces report.health with DecideHealth's verdict.
void ApplyHealth(DeviceReport& report, const Config& config);

// Where a device node's host path lives under the devfs root: "/dev/dri/card0" with devfs
// "/tmp/x/dev" gives "/tmp/x/dev/dri/card0"; a path outside /dev is returned as given.
std::string DevfsPath(const std::string& host_path, const std::string& devfs);

}  // namespace devscope

#endif  // DEVSCOPE_COLLECTORS_HEALTH_H_
