// The pod-resources view: what every container holds, and what the node can allocate.
#include <algorithm>
#include <charconv>
#include <map>
#include <tuple>

#include "absl/hash/hash.h"
#include "exporter/view_sections.h"
#include "kubelet/cpuset.h"

namespace devscope {
namespace {

// Family positions in the section (piece keys).
enum PodFamily : uint64_t {
  kAllocatableInfo,
  kAllocatableCount,
  kAllocatableCpus,
  kAllocatableMemory,
  kContainerDeviceInfo,
  kContainerCpus,
  kContainerMemory,
  kContainerDra,
  kAllocatedDevices,
  kAllocatedCpus,
  kPods,
};

uint64_t Key(PodFamily family) { return PieceKey(ViewSection::kPodResources, family, 0); }

// Pods per piece of a per-pod family, on average.
constexpr uint64_t kPodsPerPiece = 16;

// "0", "0,1", or "" without topology.
absl::string_view FormatNuma(const NumaNodes& nodes, std::string& scratch) {
  scratch.clear();
  char digits[24];
  for (int64_t node : nodes) {
    if (!scratch.empty()) scratch.push_back(',');
    const auto written = std::to_chars(digits, digits + sizeof(digits), node);
    scratch.append(digits, written.ptr - digits);
  }
  return scratch;
}

// Distinct CPUs in `ids`, using `scratch`.
size_t DistinctCount(const std::vector<int64_t>& ids, std::vector<int64_t>& scratch) {
  scratch.assign(ids.begin(), ids.end());
  std::sort(scratch.begin(), scratch.end());
  return std::unique(scratch.begin(), scratch.end()) - scratch.begin();
}

// Calls write(container) for every container whose name did not come earlier in the pod (or is
// empty, the name of pod-level series).
template <typename Write>
void ForEachNamedContainer(const PodResources& pod, Write write) {
  for (size_t i = 0; i < pod.containers.size(); ++i) {
    const std::string& name = pod.containers[i].name;
    bool repeat = name.empty();
    for (size_t j = 0; j < i && !repeat; ++j) repeat = pod.containers[j].name == name;
    if (!repeat) write(pod.containers[i]);
  }
}

}  // namespace

void PodResourcesSection::Render(const PodResourcesSnapshot& snapshot, StableTextBuilder& out) {
  if (snapshot.allocatable.has_value()) RenderAllocatable(*snapshot.allocatable, out);
  RenderContainers(snapshot, out);
  RenderAllocated(snapshot, out);
  ExpositionWriter writer(out.buffer());
  writer.Family("devscope_pod_resources_pods", "Pods in the last successful List.",
                FamilyType::kGauge);
  writer.Begin("devscope_pod_resources_pods");
  writer.End(static_cast<double>(snapshot.pods.size()));
  out.EndPiece(Key(kPods));
}

void PodResourcesSection::RenderAllocatable(const AllocatableResources& allocatable,
                                            StableTextBuilder& out) {
  ExpositionWriter writer(out.buffer());
  writer.Family("devscope_node_allocatable_device_info",
                "A device the node can allocate (healthy, per GetAllocatableResources).",
                FamilyType::kGauge);
  allocated_.clear();
  for (const DeviceAssignment& d : allocatable.devices) {
    const absl::string_view numa = FormatNuma(d.numa_nodes, numa_);
    for (const std::string& id : d.device_ids) {
      writer.Begin("devscope_node_allocatable_device_info");
      writer.Label("resource", d.resource);
      writer.Label("device", id);
      writer.Label("numa_node", numa);
      writer.End(1);
      allocated_.emplace(d.resource, id);
    }
  }
  out.EndPiece(Key(kAllocatableInfo));

  writer.Family("devscope_node_allocatable_devices", "Devices of a resource the node can allocate.",
                FamilyType::kGauge);
  per_resource_.clear();
  for (const auto& [resource, id] : allocated_) AddPerResource(resource, 1);
  std::sort(per_resource_.begin(), per_resource_.end());
  for (const auto& [resource, count] : per_resource_) {
    writer.Begin("devscope_node_allocatable_devices");
    writer.Label("resource", resource);
    writer.End(static_cast<double>(count));
  }
  out.EndPiece(Key(kAllocatableCount));

  writer.Family("devscope_node_allocatable_cpus",
                "CPUs the node can assign exclusively (static CPU manager policy; 0 otherwise).",
                FamilyType::kGauge);
  writer.Begin("devscope_node_allocatable_cpus");
  writer.End(static_cast<double>(DistinctCount(allocatable.cpus, cpus_)));
  out.EndPiece(Key(kAllocatableCpus));

  writer.Family("devscope_node_allocatable_memory_bytes",
                "Memory the memory manager can pin, per type and NUMA node.", FamilyType::kGauge);
  // The memory manager reports one block per type and NUMA node set; sum repeats. A handful of
  // entries: a map is fine.
  std::map<std::pair<std::string, std::string>, double> memory_sum;
  for (const MemoryAssignment& m : allocatable.memory) {
    memory_sum[{m.memory_type, std::string(FormatNuma(m.numa_nodes, numa_))}] +=
        static_cast<double>(m.size_bytes);
  }
  for (const auto& [key, bytes] : memory_sum) {
    writer.Begin("devscope_node_allocatable_memory_bytes");
    writer.Label("memory_type", key.first);
    writer.Label("numa_node", key.second);
    writer.End(bytes);
  }
  out.EndPiece(Key(kAllocatableMemory));
}

void PodResourcesSection::AddPerResource(absl::string_view resource, int64_t n) {
  auto it = std::find_if(per_resource_.begin(), per_resource_.end(),
                         [&](const auto& r) { return r.first == resource; });
  if (it == per_resource_.end()) {
    per_resource_.emplace_back(resource, n);
  } else {
    it->second += n;
  }
}

void PodResourcesSection::SortPods(const PodResourcesSnapshot& snapshot) {
  sorted_.clear();
  for (const PodResources& pod : snapshot.pods) sorted_.push_back(&pod);
  std::sort(sorted_.begin(), sorted_.end(), [](const PodResources* a, const PodResources* b) {
    return std::tie(a->ns, a->name) < std::tie(b->ns, b->name);
  });
  // A pod listed twice (a malformed reply) is written once: the first.
  sorted_.erase(std::unique(sorted_.begin(), sorted_.end(),
                            [](const PodResources* a, const PodResources* b) {
                              return a->ns == b->ns && a->name == b->name;
                            }),
                sorted_.end());
  // A piece starts at a pod whose name hashes to 0 mod kPodsPerPiece: where pieces start depends
  // only on the pods there, so a pod that comes or goes changes only the piece it falls in.
  piece_starts_.clear();
  for (size_t i = 0; i < sorted_.size(); ++i) {
    const uint64_t hash = absl::HashOf(sorted_[i]->ns, sorted_[i]->name);
    if (i == 0 || hash % kPodsPerPiece == 0) piece_starts_.emplace_back(i, hash & kBlockMask);
  }
}

template <typename WritePod>
void PodResourcesSection::PerPodPieces(uint64_t family, StableTextBuilder& out,
                                       WritePod write_pod) {
  for (size_t p = 0; p < piece_starts_.size(); ++p) {
    const size_t end = p + 1 < piece_starts_.size() ? piece_starts_[p + 1].first : sorted_.size();
    for (size_t i = piece_starts_[p].first; i < end; ++i) write_pod(*sorted_[i]);
    // Pods with nothing of this family add to the next piece instead of making an empty one.
    if (out.pending_bytes() > 0 || p + 1 == piece_starts_.size()) {
      out.EndPiece(PieceKey(ViewSection::kPodResources, family, piece_starts_[p].second));
    }
  }
}

void PodResourcesSection::RenderContainers(const PodResourcesSnapshot& snapshot,
                                           StableTextBuilder& out) {
  SortPods(snapshot);
  ExpositionWriter writer(out.buffer());
  RenderContainerDevices(writer, out);
  RenderContainerCpus(writer, out);
  RenderContainerMemory(writer, out);
  RenderContainerClaims(writer, out);
}

void PodResourcesSection::StartHolder(ExpositionWriter& writer, const PodResources& pod,
                                      absl::string_view container) {
  // Series of one container can repeat only among themselves (pods and container names are
  // unique once repeats are skipped), so each container is a scope of its own for duplicates, and
  // its holder labels are rendered once.
  writer.ForgetSeries();
  holder_.clear();
  AppendLabel(holder_, "namespace", pod.ns);
  AppendLabel(holder_, "pod", pod.name);
  AppendLabel(holder_, "container", container);
}

void PodResourcesSection::RenderContainerDevices(ExpositionWriter& writer, StableTextBuilder& out) {
  writer.Family("devscope_container_device_info",
                "A device allocated to a container, per the kubelet's pod-resources API (1 per "
                "device per container).",
                FamilyType::kGauge);
  PerPodPieces(kContainerDeviceInfo, out, [&](const PodResources& pod) {
    ForEachNamedContainer(pod, [&](const ContainerResources& c) {
      StartHolder(writer, pod, c.name);
      for (const DeviceAssignment& d : c.devices) {
        const absl::string_view numa = FormatNuma(d.numa_nodes, numa_);
        for (const std::string& id : d.device_ids) {
          writer.Begin("devscope_container_device_info");
          writer.Labels(holder_);
          writer.Label("resource", d.resource);
          writer.Label("device", id);
          writer.Label("numa_node", numa);
          writer.End(1);
        }
      }
    });
  });
}

void PodResourcesSection::RenderContainerCpus(ExpositionWriter& writer, StableTextBuilder& out) {
  writer.Family("devscope_container_exclusive_cpus",
                "Exclusive CPUs of a container (static CPU manager); cpus is the cpuset list. "
                "container is empty for pod-level CPUs.",
                FamilyType::kGauge);
  const auto cpus = [&](const PodResources& pod, absl::string_view container,
                        const std::vector<int64_t>& ids) {
    if (ids.empty()) return;
    StartHolder(writer, pod, container);
    writer.Begin("devscope_container_exclusive_cpus");
    writer.Labels(holder_);
    writer.Label("cpus", FormatCpuSet(ids));
    writer.End(static_cast<double>(DistinctCount(ids, cpus_)));
  };
  PerPodPieces(kContainerCpus, out, [&](const PodResources& pod) {
    cpus(pod, "", pod.pod_cpus);
    ForEachNamedContainer(
        pod, [&](const ContainerResources& c) { cpus(pod, c.name, c.exclusive_cpus); });
  });
}

void PodResourcesSection::RenderContainerMemory(ExpositionWriter& writer, StableTextBuilder& out) {
  writer.Family("devscope_container_memory_bytes",
                "Memory pinned to a container by the memory manager (Static policy), per type and "
                "NUMA node.",
                FamilyType::kGauge);
  const auto memory = [&](const PodResources& pod, absl::string_view container,
                          const std::vector<MemoryAssignment>& blocks) {
    if (blocks.empty()) return;
    StartHolder(writer, pod, container);
    for (const MemoryAssignment& block : blocks) {
      writer.Begin("devscope_container_memory_bytes");
      writer.Labels(holder_);
      writer.Label("memory_type", block.memory_type);
      writer.Label("numa_node", FormatNuma(block.numa_nodes, numa_));
      writer.End(static_cast<double>(block.size_bytes));
    }
  };
  PerPodPieces(kContainerMemory, out, [&](const PodResources& pod) {
    memory(pod, "", pod.pod_memory);
    ForEachNamedContainer(pod, [&](const ContainerResources& c) { memory(pod, c.name, c.memory); });
  });
}

void PodResourcesSection::RenderContainerClaims(ExpositionWriter& writer, StableTextBuilder& out) {
  writer.Family("devscope_container_dynamic_resource_info",
                "A DRA device prepared for a container (1 per claim device).", FamilyType::kGauge);
  PerPodPieces(kContainerDra, out, [&](const PodResources& pod) {
    ForEachNamedContainer(pod, [&](const ContainerResources& c) {
      if (c.claim_devices.empty()) return;
      StartHolder(writer, pod, c.name);
      for (const ClaimDevice& claim : c.claim_devices) {
        writer.Begin("devscope_container_dynamic_resource_info");
        writer.Labels(holder_);
        writer.Label("claim_namespace", claim.claim_namespace);
        writer.Label("claim_name", claim.claim_name);
        writer.Label("driver", claim.driver);
        writer.Label("pool", claim.pool);
        writer.Label("device", claim.device);
        writer.Label("share_id", claim.share_id.has_value() ? *claim.share_id : "");
        writer.End(1);
      }
    });
  });
}

void PodResourcesSection::RenderAllocated(const PodResourcesSnapshot& snapshot,
                                          StableTextBuilder& out) {
  // Distinct device IDs per resource: a device held by two containers (time-slicing) is one.
  allocated_.clear();
  cpus_.clear();
  for (const PodResources& pod : snapshot.pods) {
    cpus_.insert(cpus_.end(), pod.pod_cpus.begin(), pod.pod_cpus.end());
    for (const ContainerResources& c : pod.containers) {
      cpus_.insert(cpus_.end(), c.exclusive_cpus.begin(), c.exclusive_cpus.end());
      for (const DeviceAssignment& d : c.devices) {
        for (const std::string& id : d.device_ids) allocated_.emplace(d.resource, id);
      }
    }
  }
  per_resource_.clear();
  for (const auto& [resource, id] : allocated_) AddPerResource(resource, 1);
  // A resource the node can allocate with nothing in use reports 0.
  if (snapshot.allocatable.has_value()) {
    for (const DeviceAssignment& d : snapshot.allocatable->devices) AddPerResource(d.resource, 0);
  }
  std::sort(per_resource_.begin(), per_resource_.end());

  ExpositionWriter writer(out.buffer());
  writer.Family("devscope_node_allocated_devices",
                "Devices of a resource allocated to containers (distinct device IDs).",
                FamilyType::kGauge);
  for (const auto& [resource, n] : per_resource_) {
    writer.Begin("devscope_node_allocated_devices");
    writer.Label("resource", resource);
    writer.End(static_cast<double>(n));
  }
  out.EndPiece(Key(kAllocatedDevices));

  writer.Family("devscope_node_allocated_exclusive_cpus",
                "Exclusive CPUs allocated to containers and pods.", FamilyType::kGauge);
  std::sort(cpus_.begin(), cpus_.end());
  writer.Begin("devscope_node_allocated_exclusive_cpus");
  writer.End(static_cast<double>(std::unique(cpus_.begin(), cpus_.end()) - cpus_.begin()));
  out.EndPiece(Key(kAllocatedCpus));
}

}  // namespace devscope
