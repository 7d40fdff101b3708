// The device plugin's options: --[no-]device-plugin, --kubelet.device-plugins-dir,
// --[no-]device-plugin.cdi, --device-plugin.cdi-spec-dir and the YAML device_plugin.* keys.
#ifndef DEVSCOPE_DEVICEPLUGIN_PLUGIN_OPTIONS_H_
#define DEVSCOPE_DEVICEPLUGIN_PLUGIN_OPTIONS_H_

#include <map>
#include <optional>
#include <string>

#include "common/options.h"

namespace devscope {

// How GetPreferredAllocation picks among equally NUMA-aligned devices.
enum class AllocationPolicy { kPack, kSpread };

// What Allocate answers for a device: its device specs (device nodes, mounts, variables), the
// name of its device in devscope's CDI spec (the runtime reads the rest there), or both. A device
// that no CDI spec on disk names is answered with device specs whatever this says.
enum class AllocateWith { kDeviceSpecs, kCdi, kBoth };

// One resource's settings (YAML device_plugin.resources.RESOURCE).
struct PluginResourceOptions {
  AllocationPolicy allocation_policy = AllocationPolicy::kPack;
  bool pre_start_container = false;           // advertise and serve PreStartContainer
  std::optional<AllocateWith> allocate_with;  // unset: device_plugin.allocate_with
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
  // --[no-]device-plugin.cdi: write a CDI spec per advertised resource (deviceplugin/cdi_spec.h)
  // into --device-plugin.cdi-spec-dir.
  bool cdi = true;
  std::string cdi_spec_dir = "/var/run/cdi";
  AllocateWith allocate_with = AllocateWith::kDeviceSpecs;  // device_plugin.allocate_with
  std::map<std::string, PluginResourceOptions> resources;   // device_plugin.resources

  // The settings for `resource`: the defaults when the YAML names none, allocate_with always set.
  PluginResourceOptions For(const std::string& resource) const {
    auto it = resources.find(resource);
    PluginResourceOptions settings = it == resources.end() ? PluginResourceOptions{} : it->second;
    if (!settings.allocate_with.has_value()) settings.allocate_with = allocate_with;
    return settings;
  }
};
void DeclareOptions(OptionDeclarer& d, PluginOptions& o);

}  // namespace devscope

#endif  // DEVSCOPE_DEVICEPLUGIN_PLUGIN_OPTIONS_H_
