// The device plugin's metric families, registered once by the manager and written by the servers
// and the CDI spec writer.
#ifndef DEVSCOPE_DEVICEPLUGIN_PLUGIN_METRICS_H_
#define DEVSCOPE_DEVICEPLUGIN_PLUGIN_METRICS_H_

#include "absl/status/statusor.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace devscope {

struct PluginMetrics {
  prometheus::Family<prometheus::Gauge>* registered = nullptr;        // {resource}
  prometheus::Family<prometheus::Counter>* registrations = nullptr;   // {resource,result}
  prometheus::Family<prometheus::Counter>* allocations = nullptr;     // {resource,result}
  prometheus::Family<prometheus::Gauge>* cdi_spec_current = nullptr;  // {resource}
};

// Registers the families in `registry`; an error (never an exception) when one clashes.
absl::StatusOr<PluginMetrics> RegisterPluginMetrics(prometheus::Registry& registry);

}  // namespace devscope

#endif  // DEVSCOPE_DEVICEPLUGIN_PLUGIN_METRICS_H_
