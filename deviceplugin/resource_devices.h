// One resource's advertised devices: an immutable set, with the ListAndWatch message every stream
// of the resource sends built once (deviceplugin/plugin_server.h serves it).
#ifndef DEVSCOPE_DEVICEPLUGIN_RESOURCE_DEVICES_H_
#define DEVSCOPE_DEVICEPLUGIN_RESOURCE_DEVICES_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "collectors/collector.h"
#include "deviceplugin/v1beta1/api.pb.h"

namespace devscope {

// One advertised device, from the device snapshot (collectors/collector.h).
struct PluginDevice {
  std::string id;       // DeviceInfo::id
  bool healthy = true;  // DeviceReport::health.healthy (the health model's final decision)
  std::optional<int64_t> numa_node;  // DeviceInfo::numa_node
  AllocateSpec allocate;             // DeviceInfo::allocate
  // vendor/class=name of the device in devscope's CDI spec on disk; empty when no spec names it
  // (deviceplugin/cdi_spec.h).
  std::string cdi_name;
};

// The immutable device set of one resource, with its ListAndWatch message built once.
struct ResourceDevices {
  std::vector<PluginDevice> devices;               // natural order of IDs
  absl::flat_hash_map<std::string, size_t> index;  // ID -> position in devices
  v1beta1::ListAndWatchResponse response;          // what every stream sends

  // Builds the set; a duplicate ID keeps its first occurrence.
  static std::shared_ptr<const ResourceDevices> Build(std::vector<PluginDevice> devices);
  const PluginDevice* Find(const std::string& id) const;
};

// Whether two sets advertise the same (IDs, health and NUMA nodes, in order); null only equals
// null.
bool SameAdvertisement(const ResourceDevices* a, const ResourceDevices* b);

}  // namespace devscope

#endif  // DEVSCOPE_DEVICEPLUGIN_RESOURCE_DEVICES_H_
