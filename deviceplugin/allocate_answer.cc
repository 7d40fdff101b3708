#include "deviceplugin/allocate_answer.h"

#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "deviceplugin/resource_devices.h"

namespace devscope {
namespace {

// Merges a key=value pair into a protobuf map: the same value once, different values of several
// devices joined with ',' in device order (e.g. a per-device visible-devices variable).
void MergeInto(google::protobuf::Map<std::string, std::string>& map, const std::string& key,
               const std::string& value) {
  auto it = map.find(key);
  if (it == map.end()) {
    map[key] = value;
    return;
  }
  for (absl::string_view existing : absl::StrSplit(it->second, ',')) {
    if (existing == value) return;
  }
  it->second = absl::StrCat(it->second, ",", value);
}

// Adds one device's answer: its device specs, its CDI name, or both (`with`); device specs when no
// CDI spec names it. Annotations and the CDI devices its allocate file names always.
void AppendSpec(const PluginDevice& device, AllocateWith with,
                v1beta1::ContainerAllocateResponse& out,
                absl::flat_hash_set<std::string>& device_paths,
                absl::flat_hash_set<std::string>& mount_paths,
                absl::flat_hash_set<std::string>& cdi_names) {
  const AllocateSpec& spec = device.allocate;
  const bool by_name = with != AllocateWith::kDeviceSpecs && !device.cdi_name.empty();
  if (by_name && cdi_names.insert(device.cdi_name).second) {
    out.add_cdi_devices()->set_name(device.cdi_name);
  }
  for (const auto& [key, value] : spec.annotations) {
    MergeInto(*out.mutable_annotations(), key, value);
  }
  for (const std::string& name : spec.cdi_devices) {
    if (cdi_names.insert(name).second) out.add_cdi_devices()->set_name(name);
  }
  if (by_name && with == AllocateWith::kCdi) return;
  for (const AllocateSpec::DeviceNode& node : spec.device_nodes) {
    std::string container_path = node.container_path.empty() ? node.host_path : node.container_path;
    // The kubelet de-duplicates by container path too; doing it here keeps the answer clean.
    if (!device_paths.insert(container_path).second) continue;
    v1beta1::DeviceSpec* device = out.add_devices();
    device->set_host_path(node.host_path);
    device->set_container_path(container_path);
    device->set_permissions(node.permissions.empty() ? "rw" : node.permissions);
  }
  for (const auto& [key, value] : spec.envs) MergeInto(*out.mutable_envs(), key, value);
  for (const AllocateSpec::Mount& mount : spec.mounts) {
    if (!mount_paths.insert(mount.container_path).second) continue;
    v1beta1::Mount* m = out.add_mounts();
    m->set_host_path(mount.host_path);
    m->set_container_path(mount.container_path);
    m->set_read_only(mount.read_only);
  }
}

}  // namespace

void FillContainerAnswer(const std::vector<const PluginDevice*>& devices, AllocateWith with,
                         v1beta1::ContainerAllocateResponse& out) {
  absl::flat_hash_set<std::string> device_paths, mount_paths, cdi_names;
  for (const PluginDevice* device : devices) {
    AppendSpec(*device, with, out, device_paths, mount_paths, cdi_names);
  }
}

}  // namespace devscope
