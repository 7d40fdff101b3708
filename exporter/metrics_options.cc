#include "exporter/metrics_options.h"

namespace devscope {

void DeclareOptions(OptionDeclarer& d, MetricsOptions& o) {
  d.FlagAndKey("metrics.holder-labels", "metrics.holder_labels", SwitchValue(o.holder_labels),
               "Put the holder's namespace, pod and container labels on device health and "
               "telemetry (one series per holder); off: one series per device, and "
               "devscope_container_device_info says who holds it")
      .Group("Web");
}

}  // namespace devscope
