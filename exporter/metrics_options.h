// The metrics.* options: how the node and device view is written (exporter/metrics_renderer.h).
// Each is a knob that cuts the series a node sends to Prometheus (docs/scale.md).
#ifndef DEVSCOPE_EXPORTER_METRICS_OPTIONS_H_
#define DEVSCOPE_EXPORTER_METRICS_OPTIONS_H_

#include "common/options.h"

namespace devscope {

struct MetricsOptions {
  // --[no-]metrics.holder-labels, metrics.holder_labels: the namespace, pod and container labels
  // on device health and telemetry. Off, a device's series are one set whoever holds it, and
  // devscope_container_device_info still says who holds what (a PromQL join adds the labels).
  bool holder_labels = true;
};
void DeclareOptions(OptionDeclarer& d, MetricsOptions& o);

}  // namespace devscope

#endif  // DEVSCOPE_EXPORTER_METRICS_OPTIONS_H_
