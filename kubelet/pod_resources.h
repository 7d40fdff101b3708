// What the kubelet's pod-resources API said, as one immutable picture. The poller builds a new
// PodResourcesSnapshot from each successful List (and the latest GetAllocatableResources) and
// publishes it; renderers, the joiner and `devscope pod` only read it.
#ifndef DEVSCOPE_KUBELET_POD_RESOURCES_H_
#define DEVSCOPE_KUBELET_POD_RESOURCES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace devscope {

// NUMA node IDs from a TopologyInfo; empty when the kubelet reported no topology.
using NumaNodes = std::vector<int64_t>;

// ContainerDevices: the devices of one resource that a container (or the node) holds.
struct DeviceAssignment {
  std::string resource;                 // resource_name, e.g. nvidia.com/gpu
  std::vector<std::string> device_ids;  // device_ids, as the device plugin advertised them
  NumaNodes numa_nodes;                 // topology.nodes[].ID
};

// ContainerMemory: memory pinned by the memory manager (Static policy only).
struct MemoryAssignment {
  std::string memory_type;  // memory_type, e.g. memory, hugepages-1Gi
  uint64_t size_bytes = 0;  // size
  NumaNodes numa_nodes;     // topology.nodes[].ID
};

// One ClaimResource of a DynamicResource (DRA), flattened with its claim.
struct ClaimDevice {
  std::string claim_namespace;           // DynamicResource.claim_namespace
  std::string claim_name;                // DynamicResource.claim_name
  std::string driver;                    // ClaimResource.driver_name (1.31+)
  std::string pool;                      // ClaimResource.pool_name
  std::string device;                    // ClaimResource.device_name
  std::optional<std::string> share_id;   // ClaimResource.share_id (1.35+)
  std::vector<std::string> cdi_devices;  // ClaimResource.cdi_devices[].name
};

struct ContainerResources {
  std::string name;
  std::vector<DeviceAssignment> devices;
  std::vector<int64_t> exclusive_cpus;  // cpu_ids: exclusive CPUs only
  std::vector<MemoryAssignment> memory;
  std::vector<ClaimDevice> claim_devices;
};

struct PodResources {
  std::string ns;
  std::string name;
  // Restartable (sidecar) init containers first, then app containers, as the kubelet lists them.
  std::vector<ContainerResources> containers;
  std::vector<int64_t> pod_cpus;             // PodResources.cpu_ids (pod-level managers, 1.36+)
  std::vector<MemoryAssignment> pod_memory;  // PodResources.memory
};

// AllocatableResourcesResponse: healthy devices, exclusive-assignable CPUs, pinnable memory.
struct AllocatableResources {
  std::vector<DeviceAssignment> devices;
  std::vector<int64_t> cpus;
  std::vector<MemoryAssignment> memory;
};

struct PodResourcesSnapshot {
  // From the last successful List; kept (not cleared) while the kubelet is unreachable.
  std::vector<PodResources> pods;
  // From the last successful GetAllocatableResources; absent when the kubelet does not serve it
  // or has not answered yet.
  std::optional<AllocatableResources> allocatable;
  // When the first List with this content returned (an unchanged reply keeps the snapshot).
  absl::Time list_time = absl::InfinitePast();
};

}  // namespace devscope

#endif  // DEVSCOPE_KUBELET_POD_RESOURCES_H_
