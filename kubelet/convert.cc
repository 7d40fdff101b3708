#include "kubelet/convert.h"

#include <algorithm>
#include <tuple>
#include <utility>

namespace devscope {
namespace {

NumaNodes ConvertTopology(const v1::TopologyInfo& topology) {
  NumaNodes nodes;
  nodes.reserve(topology.nodes_size());
  for (const v1::NUMANode& node : topology.nodes()) nodes.push_back(node.id());
  return nodes;
}

DeviceAssignment ConvertDevices(const v1::ContainerDevices& devices) {
  DeviceAssignment out;
  out.resource = devices.resource_name();
  out.device_ids.assign(devices.device_ids().begin(), devices.device_ids().end());
  if (devices.has_topology()) out.numa_nodes = ConvertTopology(devices.topology());
  return out;
}

MemoryAssignment ConvertMemory(const v1::ContainerMemory& memory) {
  MemoryAssignment out;
  out.memory_type = memory.memory_type();
  out.size_bytes = memory.size();
  if (memory.has_topology()) out.numa_nodes = ConvertTopology(memory.topology());
  return out;
}

std::vector<MemoryAssignment> ConvertMemoryList(
    const google::protobuf::RepeatedPtrField<v1::ContainerMemory>& memory) {
  std::vector<MemoryAssignment> out;
  out.reserve(memory.size());
  for (const v1::ContainerMemory& m : memory) out.push_back(ConvertMemory(m));
  return out;
}

ContainerResources ConvertContainer(const v1::ContainerResources& container) {
  ContainerResources out;
  out.name = container.name();
  out.devices.reserve(container.devices_size());
  for (const v1::ContainerDevices& d : container.devices())
    out.devices.push_back(ConvertDevices(d));
  out.exclusive_cpus.assign(container.cpu_ids().begin(), container.cpu_ids().end());
  out.memory = ConvertMemoryList(container.memory());
  for (const v1::DynamicResource& claim : container.dynamic_resources()) {
    for (const v1::ClaimResource& resource : claim.claim_resources()) {
      ClaimDevice device;
      device.claim_namespace = claim.claim_namespace();
      device.claim_name = claim.claim_name();
      device.driver = resource.driver_name();
      device.pool = resource.pool_name();
      device.device = resource.device_name();
      if (resource.has_share_id()) device.share_id = resource.share_id();
      for (const v1::CDIDevice& cdi : resource.cdi_devices()) {
        device.cdi_devices.push_back(cdi.name());
      }
      out.claim_devices.push_back(std::move(device));
    }
  }
  return out;
}

}  // namespace

PodResources ConvertPod(const v1::PodResources& pod) {
  PodResources out;
  out.ns = pod.namespace_();
  out.name = pod.name();
  out.containers.reserve(pod.containers_size());
  for (const v1::ContainerResources& c : pod.containers()) {
    out.containers.push_back(ConvertContainer(c));
  }
  out.pod_cpus.assign(pod.cpu_ids().begin(), pod.cpu_ids().end());
  out.pod_memory = ConvertMemoryList(pod.memory());
  return out;
}

std::vector<PodResources> ConvertPods(const v1::ListPodResourcesResponse& response) {
  std::vector<PodResources> pods;
  pods.reserve(response.pod_resources_size());
  for (const v1::PodResources& pod : response.pod_resources()) pods.push_back(ConvertPod(pod));
  return pods;
}

AllocatableResources ConvertAllocatable(const v1::AllocatableResourcesResponse& response) {
  AllocatableResources out;
  out.devices.reserve(response.devices_size());
  for (const v1::ContainerDevices& d : response.devices()) out.devices.push_back(ConvertDevices(d));
  out.cpus.assign(response.cpu_ids().begin(), response.cpu_ids().end());
  out.memory = ConvertMemoryList(response.memory());
  return out;
}

void SortListReply(v1::ListPodResourcesResponse& reply) {
  auto* pods = reply.mutable_pod_resources();
  std::sort(pods->pointer_begin(), pods->pointer_end(),
            [](const v1::PodResources* a, const v1::PodResources* b) {
              return std::tie(a->namespace_(), a->name()) < std::tie(b->namespace_(), b->name());
            });
  for (v1::PodResources& pod : *pods) {
    for (v1::ContainerResources& container : *pod.mutable_containers()) {
      auto* devices = container.mutable_devices();
      for (v1::ContainerDevices& d : *devices) {
        std::sort(d.mutable_device_ids()->begin(), d.mutable_device_ids()->end());
        if (!d.has_topology()) continue;  // absent is not empty (no topology reported)
        auto* nodes = d.mutable_topology()->mutable_nodes();
        std::sort(nodes->pointer_begin(), nodes->pointer_end(),
                  [](const v1::NUMANode* a, const v1::NUMANode* b) { return a->id() < b->id(); });
      }
      // The kubelet writes one entry per device (and NUMA node): order by all of it.
      std::sort(devices->pointer_begin(), devices->pointer_end(),
                [](const v1::ContainerDevices* a, const v1::ContainerDevices* b) {
                  if (a->resource_name() != b->resource_name()) {
                    return a->resource_name() < b->resource_name();
                  }
                  const auto& x = a->device_ids();
                  const auto& y = b->device_ids();
                  if (!std::equal(x.begin(), x.end(), y.begin(), y.end())) {
                    return std::lexicographical_compare(x.begin(), x.end(), y.begin(), y.end());
                  }
                  const auto node_less = [](const v1::NUMANode& x, const v1::NUMANode& y) {
                    return x.id() < y.id();
                  };
                  return std::lexicographical_compare(
                      a->topology().nodes().begin(), a->topology().nodes().end(),
                      b->topology().nodes().begin(), b->topology().nodes().end(), node_less);
                });
    }
  }
}

}  // namespace devscope
