// The device plugin's options: --[no-]device-plugin, --kubelet.device-plugins-dir and the YAML
// device_plugin.* keys.
#ifndef DEVSCOPE_DEVICEPLUGIN_PLUGIN_OPTIONS_H_
#define DEVSCOPE_DEVICEPLUGIN_PLUGIN_OPTIONS_H_

#include <map>
#include <string>

#include "common/options.h"

namespace devscope {

// How GetPreferredAllocation picks among equally NUMA-aligned devices.
enum class AllocationPolicy { kPack, kSpread };

// One resource's settings (YAML device_plugin.resources.RESOURCE).
struct PluginResourceOptions {
  AllocationPolicy allocation_policy = AllocationPolicy::kPack;
  bool pre_start_container = false;  // advertise and serve PreStartContainer
};
void DeclareOptions(OptionDeclarer& d, PluginResourceOptions& o);

struct PluginOptions {
  bool enabled = true;  // --[no-]device-plugin
  // --kubelet.device-plugins-dir: where kubelet.sock is and the plugin sockets go. Read (and
  // required to exist when given) only while the plugin is enabled.
  std::string device_plugins_dir = "/var/lib/kubelet/device-plugins";
  // device_plugin.plugins_registry_dir: when set, register through the kubelet's plugin watcher
  // there instead of calling Register on kubelet.sock.
  std::string plugins_registry_dir;
  std::map<std::string, PluginResourceOptions> resources;  // device_plugin.resources

  // The settings for `resource`: the defaults when the YAML names none.
  PluginResourceOptions For(const std::string& resource) const {
    auto it = resources.find(resource);
    return it == resources.end() ? PluginResourceOptions{} : it->second;
  }
};
void DeclareOptions(OptionDeclarer& d, PluginOptions& o);

}  // namespace devscope

#endif  // DEVSCOPE_DEVICEPLUGIN_PLUGIN_OPTIONS_H_
