#include "deviceplugin/plugin_options.h"

namespace devscope {

void DeclareOptions(OptionDeclarer& d, PluginResourceOptions& o) {
  d.Key("allocation_policy",
        ChoiceValue(o.allocation_policy,
                    {{"pack", AllocationPolicy::kPack}, {"spread", AllocationPolicy::kSpread}}),
        "How GetPreferredAllocation picks among equally NUMA-aligned devices: pack fills the "
        "fullest node that fits, spread takes from the emptiest");
  d.Key("pre_start_container", o.pre_start_container, "Advertise and serve PreStartContainer");
}

void DeclareOptions(OptionDeclarer& d, PluginOptions& o) {
  d.Flag("device-plugin", o.enabled, "Serve the kubelet device plugin for advertised devices")
      .Group("Device plugin");
  // Only a plugin that runs needs the directory: with --no-device-plugin it is never read.
  d.Flag("kubelet.device-plugins-dir", o.device_plugins_dir,
         "Where kubelet.sock is and plugin sockets go (read only with the device plugin on)")
      .Group("Kubelet")
      .MustBeDirectory([&o] { return o.enabled; });
  d.Key("device_plugin.plugins_registry_dir", o.plugins_registry_dir,
        "Set (e.g. /var/lib/kubelet/plugins_registry) to register through the kubelet's plugin "
        "watcher there instead of calling Register on kubelet.sock");
  d.Key("device_plugin.resources", MapValue(o.resources, &DeclareOptions, "RESOURCE"),
        "Per-resource settings, by extended resource name");
}

}  // namespace devscope
