#include "deviceplugin/resource_devices.h"

#include <algorithm>
#include <utility>

#include "deviceplugin/preferred_allocation.h"

namespace devscope {

std::shared_ptr<const ResourceDevices> ResourceDevices::Build(std::vector<PluginDevice> devices) {
  auto built = std::make_shared<ResourceDevices>();
  std::stable_sort(
      devices.begin(), devices.end(),
      [](const PluginDevice& a, const PluginDevice& b) { return NaturalLess(a.id, b.id); });
  for (PluginDevice& device : devices) {
    if (built->index.contains(device.id)) continue;
    built->index.emplace(device.id, built->devices.size());
    v1beta1::Device* out = built->response.add_devices();
    out->set_id(device.id);
    out->set_health(device.healthy ? "Healthy" : "Unhealthy");
    if (device.numa_node.has_value()) {
      out->mutable_topology()->add_nodes()->set_id(*device.numa_node);
    }
    built->devices.push_back(std::move(device));
  }
  return built;
}

const PluginDevice* ResourceDevices::Find(const std::string& id) const {
  auto it = index.find(id);
  return it == index.end() ? nullptr : &devices[it->second];
}

bool SameAdvertisement(const ResourceDevices* a, const ResourceDevices* b) {
  if (a == nullptr || b == nullptr) return a == b;
  if (a->devices.size() != b->devices.size()) return false;
  for (size_t i = 0; i < a->devices.size(); ++i) {
    const PluginDevice& x = a->devices[i];
    const PluginDevice& y = b->devices[i];
    if (x.id != y.id || x.healthy != y.healthy || x.numa_node != y.numa_node) return false;
  }
  return true;
}

}  // namespace devscope
