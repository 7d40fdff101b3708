#include "exporter/metrics_renderer.h"

#include <algorithm>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/label_names.h"
#include "exporter/join.h"
#include "kubelet/cpuset.h"
#include "prometheus/text_serializer.h"

namespace devscope {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// Builds one family, dropping exact duplicate series (a malformed kubelet reply can repeat a
// device; Prometheus rejects a scrape with duplicate series).
class FamilyBuilder {
 public:
  FamilyBuilder(std::string name, std::string help, MetricType type) {
    family_.name = std::move(name);
    family_.help = std::move(help);
    family_.type = type;
  }

  void Add(std::vector<ClientMetric::Label> labels, double value) {
    std::string key;
    for (const auto& l : labels) absl::StrAppend(&key, l.name, "\x1f", l.value, "\x1e");
    if (!seen_.insert(std::move(key)).second) return;
    ClientMetric metric;
    metric.label = std::move(labels);
    if (family_.type == MetricType::Counter) {
      metric.counter.value = value;
    } else {
      metric.gauge.value = value;
    }
    family_.metric.push_back(std::move(metric));
  }

  // Appends the family to `out` unless it has no series (promtool and Prometheus accept empty
  // families, but they are noise).
  void MoveTo(std::vector<MetricFamily>& out) {
    if (!family_.metric.empty()) out.push_back(std::move(family_));
  }

 private:
  MetricFamily family_;
  absl::flat_hash_set<std::string> seen_;
};

std::string JoinNuma(const NumaNodes& nodes) { return absl::StrJoin(nodes, ","); }

void AddPodResourcesView(const PodResourcesSnapshot& snapshot, std::vector<MetricFamily>& out) {
  FamilyBuilder device_info("devscope_container_device_info",
                            "A device allocated to a container, per the kubelet's pod-resources "
                            "API (1 per device per container).",
                            MetricType::Gauge);
  FamilyBuilder cpus("devscope_container_exclusive_cpus",
                     "Exclusive CPUs of a container (static CPU manager); cpus is the cpuset "
                     "list. container is empty for pod-level CPUs.",
                     MetricType::Gauge);
  FamilyBuilder memory("devscope_container_memory_bytes",
                       "Memory pinned to a container by the memory manager (Static policy), per "
                       "type and NUMA node.",
                       MetricType::Gauge);
  FamilyBuilder dra("devscope_container_dynamic_resource_info",
                    "A DRA device prepared for a container (1 per claim device).",
                    MetricType::Gauge);
  FamilyBuilder allocated("devscope_node_allocated_devices",
                          "Devices of a resource allocated to containers (distinct device IDs).",
                          MetricType::Gauge);
  FamilyBuilder allocated_cpus("devscope_node_allocated_exclusive_cpus",
                               "Exclusive CPUs allocated to containers and pods.",
                               MetricType::Gauge);

  std::map<std::string, std::set<std::string>> allocated_ids;
  std::set<int64_t> all_cpus;
  for (const PodResources& pod : snapshot.pods) {
    auto add_cpus = [&](const std::string& container, const std::vector<int64_t>& ids) {
      if (ids.empty()) return;
      cpus.Add({{"namespace", pod.ns},
                {"pod", pod.name},
                {"container", container},
                {"cpus", FormatCpuSet(ids)}},
               static_cast<double>(std::set<int64_t>(ids.begin(), ids.end()).size()));
      all_cpus.insert(ids.begin(), ids.end());
    };
    auto add_memory = [&](const std::string& container, const std::vector<MemoryAssignment>& m) {
      for (const MemoryAssignment& block : m) {
        memory.Add({{"namespace", pod.ns},
                    {"pod", pod.name},
                    {"container", container},
                    {"memory_type", block.memory_type},
                    {"numa_node", JoinNuma(block.numa_nodes)}},
                   static_cast<double>(block.size_bytes));
      }
    };
    add_cpus("", pod.pod_cpus);
    add_memory("", pod.pod_memory);
    for (const ContainerResources& c : pod.containers) {
      for (const DeviceAssignment& d : c.devices) {
        for (const std::string& id : d.device_ids) {
          device_info.Add({{"namespace", pod.ns},
                           {"pod", pod.name},
                           {"container", c.name},
                           {"resource", d.resource},
                           {"device", id},
                           {"numa_node", JoinNuma(d.numa_nodes)}},
                          1);
          allocated_ids[d.resource].insert(id);
        }
      }
      add_cpus(c.name, c.exclusive_cpus);
      add_memory(c.name, c.memory);
      for (const ClaimDevice& claim : c.claim_devices) {
        dra.Add({{"namespace", pod.ns},
                 {"pod", pod.name},
                 {"container", c.name},
                 {"claim_namespace", claim.claim_namespace},
                 {"claim_name", claim.claim_name},
                 {"driver", claim.driver},
                 {"pool", claim.pool},
                 {"device", claim.device},
                 {"share_id", claim.share_id.value_or("")}},
                1);
      }
    }
  }

  if (snapshot.allocatable) {
    FamilyBuilder allocatable_info("devscope_node_allocatable_device_info",
                                   "A device the node can allocate (healthy, per "
                                   "GetAllocatableResources).",
                                   MetricType::Gauge);
    FamilyBuilder allocatable_count("devscope_node_allocatable_devices",
                                    "Devices of a resource the node can allocate.",
                                    MetricType::Gauge);
    FamilyBuilder allocatable_cpus("devscope_node_allocatable_cpus",
                                   "CPUs the node can assign exclusively (static CPU manager "
                                   "policy; 0 otherwise).",
                                   MetricType::Gauge);
    FamilyBuilder allocatable_memory("devscope_node_allocatable_memory_bytes",
                                     "Memory the memory manager can pin, per type and NUMA node.",
                                     MetricType::Gauge);
    std::map<std::string, std::set<std::string>> allocatable_ids;
    for (const DeviceAssignment& d : snapshot.allocatable->devices) {
      for (const std::string& id : d.device_ids) {
        allocatable_info.Add(
            {{"resource", d.resource}, {"device", id}, {"numa_node", JoinNuma(d.numa_nodes)}}, 1);
        allocatable_ids[d.resource].insert(id);
      }
    }
    for (const auto& [resource, ids] : allocatable_ids) {
      allocatable_count.Add({{"resource", resource}}, static_cast<double>(ids.size()));
      allocated_ids.try_emplace(resource);  // a resource with nothing in use reports 0
    }
    const std::set<int64_t> cpu_set(snapshot.allocatable->cpus.begin(),
                                    snapshot.allocatable->cpus.end());
    allocatable_cpus.Add({}, static_cast<double>(cpu_set.size()));
    // The memory manager reports one block per type and NUMA node set; sum repeats.
    std::map<std::pair<std::string, std::string>, double> memory_sum;
    for (const MemoryAssignment& m : snapshot.allocatable->memory) {
      memory_sum[{m.memory_type, JoinNuma(m.numa_nodes)}] += static_cast<double>(m.size_bytes);
    }
    for (const auto& [key, bytes] : memory_sum) {
      allocatable_memory.Add({{"memory_type", key.first}, {"numa_node", key.second}}, bytes);
    }
    allocatable_info.MoveTo(out);
    allocatable_count.MoveTo(out);
    allocatable_cpus.MoveTo(out);
    allocatable_memory.MoveTo(out);
  }
  for (const auto& [resource, ids] : allocated_ids) {
    allocated.Add({{"resource", resource}}, static_cast<double>(ids.size()));
  }
  allocated_cpus.Add({}, static_cast<double>(all_cpus.size()));

  device_info.MoveTo(out);
  cpus.MoveTo(out);
  memory.MoveTo(out);
  dra.MoveTo(out);
  allocated.MoveTo(out);
  allocated_cpus.MoveTo(out);

  FamilyBuilder pods("devscope_pod_resources_pods", "Pods in the last successful List.",
                     MetricType::Gauge);
  pods.Add({}, static_cast<double>(snapshot.pods.size()));
  pods.MoveTo(out);
}

// Help texts of the device metrics the contract names; others get a generic one.
std::string DeviceHelp(const Sample& sample) {
  static const auto* const kHelp = new absl::flat_hash_map<std::string, std::string>{
      {"devscope_device_utilization_ratio", "Device utilization, 0 to 1."},
      {"devscope_device_memory_used_bytes", "Device memory in use."},
      {"devscope_device_memory_total_bytes", "Device memory in total."},
      {"devscope_device_temperature_celsius", "Device temperature."},
      {"devscope_device_power_watts", "Device power draw."},
      {"devscope_device_energy_joules_total", "Energy the device consumed."},
      {"devscope_device_errors_total", "Device errors, by kind."},
      {"devscope_device_network_receive_bytes_total", "Bytes received."},
      {"devscope_device_network_transmit_bytes_total", "Bytes transmitted."},
      {"devscope_device_link_up", "1 when the link is up."},
  };
  if (!sample.help.empty()) return sample.help;
  auto it = kHelp->find(sample.name);
  return it != kHelp->end() ? it->second : "Device telemetry reported by a collector.";
}

void AddDeviceView(const NodeView& view, std::vector<MetricFamily>& out) {
  FamilyBuilder info("devscope_device_info",
                     "A device a collector tracks, with its identity (1 per device).",
                     MetricType::Gauge);
  FamilyBuilder healthy("devscope_device_healthy",
                        "1 when the device is healthy, 0 when not: the health the device plugin "
                        "reports to the kubelet.",
                        MetricType::Gauge);
  // Telemetry families by name, in first-seen order; a name reported as both gauge and counter
  // keeps the first type and drops the others.
  std::vector<FamilyBuilder> telemetry;
  absl::flat_hash_map<std::string, std::pair<size_t, Sample::Kind>> telemetry_index;

  for (const JoinedDevice& device : view.devices) {
    const DeviceReport& report = *device.report;
    const DeviceInfo& d = report.info;
    info.Add({{"resource", device.resource},
              {"device", d.id},
              {"collector", device.collector},
              {"vendor", d.vendor},
              {"model", d.model},
              {"numa_node", d.numa_node ? absl::StrCat(*d.numa_node) : ""},
              {"pci_address", d.pci_address}},
             1);
    // One set of series per holder, or one without holder labels for a free device.
    std::vector<std::vector<ClientMetric::Label>> label_sets;
    if (device.holders.empty()) {
      label_sets.push_back({{"resource", device.resource}, {"device", d.id}});
    }
    for (const Holder& h : device.holders) {
      label_sets.push_back({{"resource", device.resource},
                            {"device", d.id},
                            {"namespace", h.ns},
                            {"pod", h.pod},
                            {"container", h.container}});
    }
    for (const auto& labels : label_sets) {
      healthy.Add(labels, report.health.healthy ? 1 : 0);
      for (const Sample& sample : report.samples) {
        if (!absl::StartsWith(sample.name, "devscope_device_") ||
            sample.name == "devscope_device_info" || sample.name == "devscope_device_healthy") {
          continue;
        }
        auto [it, inserted] =
            telemetry_index.try_emplace(sample.name, telemetry.size(), sample.kind);
        if (inserted) {
          telemetry.emplace_back(
              sample.name, DeviceHelp(sample),
              sample.kind == Sample::Kind::kCounter ? MetricType::Counter : MetricType::Gauge);
        } else if (it->second.second != sample.kind) {
          continue;
        }
        std::vector<ClientMetric::Label> series = labels;
        bool reserved = false;
        for (const auto& [name, value] : sample.labels) {
          reserved = reserved || IsReservedDeviceLabel(name);
          series.push_back({name, value});
        }
        if (reserved) continue;
        telemetry[it->second.first].Add(std::move(series), sample.value);
      }
    }
  }
  info.MoveTo(out);
  healthy.MoveTo(out);
  for (FamilyBuilder& family : telemetry) family.MoveTo(out);

  if (view.devices_source == nullptr) return;
  FamilyBuilder up("devscope_collector_up", "1 when the collector's last pass succeeded.",
                   MetricType::Gauge);
  FamilyBuilder duration("devscope_collector_duration_seconds",
                         "How long the collector's last pass took.", MetricType::Gauge);
  FamilyBuilder problems("devscope_collector_parse_errors",
                         "Problems in the collector's last pass (bad lines, skipped device "
                         "directories); each is logged with its file and line.",
                         MetricType::Gauge);
  for (const CollectorReport& c : view.devices_source->collectors) {
    up.Add({{"collector", c.collector}}, c.up ? 1 : 0);
    duration.Add({{"collector", c.collector}}, absl::ToDoubleSeconds(c.duration));
    problems.Add({{"collector", c.collector}}, static_cast<double>(c.parse_errors));
  }
  up.MoveTo(out);
  duration.MoveTo(out);
  problems.MoveTo(out);
}

}  // namespace

std::vector<MetricFamily> NodeViewCollectable::Collect() const {
  std::vector<MetricFamily> families;
  if (view_ == nullptr) return families;
  if (view_->pods != nullptr) AddPodResourcesView(*view_->pods, families);
  AddDeviceView(*view_, families);
  return families;
}

std::string SerializeFamilies(const std::vector<MetricFamily>& families) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return std::move(out).str();
}

MetricsRenderer::MetricsRenderer(const SnapshotStore<PodResourcesSnapshot>* pods,
                                 const SnapshotStore<DeviceSnapshot>* devices,
                                 std::vector<std::shared_ptr<prometheus::Collectable>> self_metrics)
    : pods_(pods), devices_(devices), self_metrics_(std::move(self_metrics)) {}

std::shared_ptr<const std::string> MetricsRenderer::RenderView(
    std::shared_ptr<const PodResourcesSnapshot> pods,
    std::shared_ptr<const DeviceSnapshot> devices) {
  absl::MutexLock lock(&mu_);
  if (cached_text_ != nullptr && cached_pods_ == pods && cached_devices_ == devices) {
    return cached_text_;
  }
  // Rendering under the lock makes concurrent scrapes of a new snapshot wait for one render
  // instead of all rendering the same text.
  const NodeViewCollectable view(Join(pods, devices));
  cached_text_ = std::make_shared<const std::string>(SerializeFamilies(view.Collect()));
  cached_pods_ = std::move(pods);
  cached_devices_ = std::move(devices);
  return cached_text_;
}

Exposition MetricsRenderer::RenderParts() {
  Exposition parts;
  parts.stable = RenderView(pods_ != nullptr ? pods_->Current() : nullptr,
                            devices_ != nullptr ? devices_->Current() : nullptr);
  std::vector<MetricFamily> self;
  for (const auto& collectable : self_metrics_) {
    auto families = collectable->Collect();
    std::move(families.begin(), families.end(), std::back_inserter(self));
  }
  parts.fresh = SerializeFamilies(self);
  return parts;
}

std::shared_ptr<const std::string> MetricsRenderer::Render() {
  Exposition parts = RenderParts();
  auto text = std::make_shared<std::string>();
  text->reserve(parts.stable->size() + parts.fresh.size());
  text->append(*parts.stable);
  text->append(parts.fresh);
  return text;
}

}  // namespace devscope
