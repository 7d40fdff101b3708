// The cost of a scrape, at the sizes the issues name:
//  - pod-resources view at 250 pods x 4 containers x 4 devices (4,000 device series);
//  - device view at 1,024 devices with 8 telemetry samples each, 250 pods x 4 containers holding
//    one device each (1,000 allocated), joined.
// "Fresh" renders a new snapshot (join + families + serialisation: what a scrape after a poll
// costs); "Cached" is every other scrape. The reference in the same run is prometheus-cpp's own
// TextSerializer over the already built families, i.e. the floor any prometheus-cpp exporter
// pays per scrape, so results read as ratios to it.
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "exporter/join.h"
#include "exporter/metrics_renderer.h"

namespace devscope {
namespace {

std::shared_ptr<PodResourcesSnapshot> Pods(int pods, int containers, int devices,
                                           int tracked_devices) {
  auto s = std::make_shared<PodResourcesSnapshot>();
  int next = 0;
  for (int p = 0; p < pods; ++p) {
    PodResources pod{.ns = "bulk", .name = absl::StrCat("pod-", p)};
    for (int c = 0; c < containers; ++c) {
      ContainerResources container{.name = absl::StrCat("c", c)};
      for (int d = 0; d < devices; ++d) {
        const std::string id = tracked_devices > 0
                                   ? absl::StrCat("dev-", next++ % tracked_devices)
                                   : absl::StrCat("dev-", p, "-", c, "-", d);
        container.devices.push_back(
            {.resource = "example.com/dev", .device_ids = {id}, .numa_nodes = {d % 2}});
      }
      pod.containers.push_back(std::move(container));
    }
    s->pods.push_back(std::move(pod));
  }
  return s;
}

std::shared_ptr<DeviceSnapshot> Devices(int count) {
  auto s = std::make_shared<DeviceSnapshot>();
  CollectorReport report{.collector = "devicedir", .up = true};
  for (int i = 0; i < count; ++i) {
    DeviceReport d;
    d.info.id = absl::StrCat("dev-", i);
    d.info.resource = "example.com/dev";
    d.info.vendor = "Example";
    d.info.model = "W100";
    d.info.numa_node = i % 2;
    d.info.pci_address = absl::StrCat("0000:", 16 + i / 32, ":", i % 32, ".0");
    for (const char* name :
         {"devscope_device_utilization_ratio", "devscope_device_memory_used_bytes",
          "devscope_device_memory_total_bytes", "devscope_device_temperature_celsius",
          "devscope_device_power_watts"}) {
      d.samples.push_back({.name = name, .value = 0.5 * i});
    }
    d.samples.push_back({.name = "devscope_device_energy_joules_total",
                         .kind = Sample::Kind::kCounter, .value = 1e6 + i});
    d.samples.push_back({.name = "devscope_device_errors_total", .kind = Sample::Kind::kCounter,
                         .labels = {{"kind", "corrected"}}, .value = 3});
    d.samples.push_back({.name = "devscope_device_errors_total", .kind = Sample::Kind::kCounter,
                         .labels = {{"kind", "uncorrected"}}, .value = 0});
    report.devices.push_back(std::move(d));
  }
  s->collectors.push_back(std::move(report));
  return s;
}

struct Fixture {
  std::shared_ptr<PodResourcesSnapshot> pods;
  std::shared_ptr<DeviceSnapshot> devices;
};

Fixture PodResourcesSize() { return {Pods(250, 4, 4, 0), nullptr}; }
Fixture DeviceSize() { return {Pods(250, 4, 1, 1024), Devices(1024)}; }

void Fresh(benchmark::State& state, Fixture (*make)()) {
  const Fixture f = make();
  SnapshotStore<PodResourcesSnapshot> pods;
  SnapshotStore<DeviceSnapshot> devices;
  MetricsRenderer renderer(&pods, &devices, {});
  size_t bytes = 0;
  for (auto _ : state) {
    // A copy of the same content is a new snapshot: the cache misses, as after a poll.
    pods.Publish(std::make_shared<PodResourcesSnapshot>(*f.pods));
    if (f.devices) devices.Publish(f.devices);
    bytes = renderer.Render()->size();
    benchmark::DoNotOptimize(bytes);
  }
  state.counters["bytes"] = static_cast<double>(bytes);
}

void Cached(benchmark::State& state, Fixture (*make)()) {
  const Fixture f = make();
  SnapshotStore<PodResourcesSnapshot> pods;
  SnapshotStore<DeviceSnapshot> devices;
  pods.Publish(f.pods);
  if (f.devices) devices.Publish(f.devices);
  MetricsRenderer renderer(&pods, &devices, {});
  for (auto _ : state) benchmark::DoNotOptimize(renderer.Render()->size());
}

void ReferenceSerializeOnly(benchmark::State& state, Fixture (*make)()) {
  const Fixture f = make();
  const auto families = NodeViewCollectable(Join(f.pods, f.devices)).Collect();
  for (auto _ : state) benchmark::DoNotOptimize(SerializeFamilies(families).size());
}

BENCHMARK_CAPTURE(Fresh, pod_resources_250x4x4, &PodResourcesSize)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(Cached, pod_resources_250x4x4, &PodResourcesSize)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(ReferenceSerializeOnly, pod_resources_250x4x4, &PodResourcesSize)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(Fresh, devices_1024_pods_250, &DeviceSize)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(Cached, devices_1024_pods_250, &DeviceSize)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(ReferenceSerializeOnly, devices_1024_pods_250, &DeviceSize)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace devscope
