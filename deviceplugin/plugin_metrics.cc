#include "deviceplugin/plugin_metrics.h"

#include <exception>

#include "absl/strings/str_cat.h"

namespace devscope {

absl::StatusOr<PluginMetrics> RegisterPluginMetrics(prometheus::Registry& registry) {
  PluginMetrics metrics;
  // prometheus-cpp throws on a clashing registration; it must not escape.
  try {
    metrics.registered =
        &prometheus::BuildGauge()
             .Name("devscope_device_plugin_registered")
             .Help(
                 "1 while devscope's device plugin for the resource is registered with the kubelet")
             .Register(registry);
    metrics.registrations = &prometheus::BuildCounter()
                                 .Name("devscope_device_plugin_registrations_total")
                                 .Help(
                                     "Registration attempts of devscope's device plugin, by "
                                     "result (success, failure)")
                                 .Register(registry);
    metrics.allocations = &prometheus::BuildCounter()
                               .Name("devscope_device_plugin_allocations_total")
                               .Help(
                                   "Allocate calls answered by devscope's device plugin, by "
                                   "result (success, unknown_device, unhealthy_device)")
                               .Register(registry);
    metrics.cdi_spec_current = &prometheus::BuildGauge()
                                    .Name("devscope_device_plugin_cdi_spec_current")
                                    .Help(
                                        "1 while the resource's CDI spec on disk names its "
                                        "current devices, 0 when writing it failed (Allocate "
                                        "then answers device specs)")
                                    .Register(registry);
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat("cannot register the device plugin metrics: ", e.what()));
  }
  return metrics;
}

}  // namespace devscope
