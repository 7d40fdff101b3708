#include "deviceplugin/plugin_options.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace devscope {
namespace {

const std::vector<std::pair<std::string, AllocateWith>> kAllocateWith = {
    {"device-specs", AllocateWith::kDeviceSpecs},
    {"cdi", AllocateWith::kCdi},
    {"both", AllocateWith::kBoth}};

constexpr char kAllocateWithHelp[] =
    "What Allocate answers: device-specs (device nodes, mounts, variables), cdi (the device's name "
    "in devscope's CDI spec) or both; a device no spec names gets device specs";

// A per-resource choice that falls back to the plugin-wide one while unset.
OptionValue InheritedAllocateWith(std::optional<AllocateWith>& field) {
  auto set = std::make_shared<AllocateWith>();
  OptionValue value = ChoiceValue(*set, kAllocateWith);
  auto parse = value.parse;
  value.parse = [&field, set, parse](absl::string_view text) {
    absl::Status status = parse(text);
    if (status.ok()) field = *set;
    return status;
  };
  value.text = [&field] {
    if (!field.has_value()) return std::string("(device_plugin.allocate_with)");
    for (const auto& [name, e] : kAllocateWith) {
      if (e == *field) return name;
    }
    return std::string();
  };
  return value;
}

}  // namespace

void DeclareOptions(OptionDeclarer& d, PluginResourceOptions& o) {
  d.Key("allocation_policy",
        ChoiceValue(o.allocation_policy,
                    {{"pack", AllocationPolicy::kPack}, {"spread", AllocationPolicy::kSpread}}),
        "How GetPreferredAllocation picks among equally NUMA-aligned devices: pack fills the "
        "fullest node that fits, spread takes from the emptiest");
  d.Key("pre_start_container", o.pre_start_container, "Advertise and serve PreStartContainer");
  d.Key("allocate_with", InheritedAllocateWith(o.allocate_with), kAllocateWithHelp);
}

void DeclareOptions(OptionDeclarer& d, PluginOptions& o) {
  d.Flag("device-plugin", o.enabled, "Serve the kubelet device plugin for advertised devices")
      .Group("Device plugin");
  // Only a plugin that runs needs the directory: with --no-device-plugin it is never read.
  d.Flag("kubelet.device-plugins-dir", o.device_plugins_dir,
         "Where kubelet.sock is and plugin sockets go (read only with the device plugin on)")
      .Group("Kubelet")
      .MustBeDirectory([&o] { return o.enabled; });
  d.Flag("device-plugin.cdi", o.cdi,
         "Write a CDI spec for each advertised resource into --device-plugin.cdi-spec-dir")
      .Group("Device plugin");
  // Not a start-up error when it cannot be written: the plugin then answers device specs, logs
  // it once and devscope_device_plugin_cdi_spec_current says 0.
  d.Flag("device-plugin.cdi-spec-dir", o.cdi_spec_dir,
         "Where the CDI specs go (where the container runtime reads them)")
      .Group("Device plugin")
      .Check([&o] {
        if (!o.cdi_spec_dir.empty() && o.cdi_spec_dir[0] == '/') return absl::OkStatus();
        return absl::InvalidArgumentError(
            absl::StrCat("\"", o.cdi_spec_dir, "\" is not an absolute path"));
      });
  d.Key("device_plugin.plugins_registry_dir", o.plugins_registry_dir,
        "Set (e.g. /var/lib/kubelet/plugins_registry) to register through the kubelet's plugin "
        "watcher there instead of calling Register on kubelet.sock");
  d.Key("device_plugin.allocate_with", ChoiceValue(o.allocate_with, kAllocateWith),
        kAllocateWithHelp);
  d.Key("device_plugin.resources", MapValue(o.resources, &DeclareOptions, "RESOURCE"),
        "Per-resource settings, by extended resource name");
}

}  // namespace devscope
