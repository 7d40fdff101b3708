// The health model: the one place that decides a device's final health from what its collector
// saw (collectors/collector.h HealthSignal: a devicedir health file, an XID, a link down) and the
// configured checks. The runner applies it before publishing, so the device plugin and
// devscope_device_healthy read the same verdict.
#ifndef DEVSCOPE_COLLECTORS_HEALTH_H_
#define DEVSCOPE_COLLECTORS_HEALTH_H_

#include <optional>
#include <string>

#include "collectors/collector.h"
#include "collectors/node_roots.h"
#include "common/options.h"

namespace devscope {

// YAML health.*.
struct HealthOptions {
  // Hotter than this: unhealthy. None: no temperature check.
  std::optional<double> max_temperature_celsius;
};
void DeclareOptions(OptionDeclarer& d, HealthOptions& o);

struct HealthVerdict {
  bool healthy = true;
  std::string reason;  // every reason it is unhealthy, joined with "; "; empty when healthy
  bool operator==(const HealthVerdict&) const = default;
};

class HealthModel {
 public:
  HealthModel() = default;
  HealthModel(HealthOptions options, NodeRoots roots)
      : options_(std::move(options)), roots_(std::move(roots)) {}

  // Decides from, in this order: the collector's raw signal; each of info.allocate.device_nodes
  // whose host path is missing (looked up through NodeRoots::DevfsPath: the only check that a
  // device node exists); any devscope_device_temperature_celsius sample above the maximum.
  HealthVerdict Decide(const DeviceReport& report) const;

  // Replaces report.health with Decide's verdict.
  void Apply(DeviceReport& report) const;

 private:
  HealthOptions options_;
  NodeRoots roots_;
};

}  // namespace devscope

#endif  // DEVSCOPE_COLLECTORS_HEALTH_H_
