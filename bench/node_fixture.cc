#include "bench/node_fixture.h"

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "demo/standin_pod_resources.h"
#include "kubelet/convert.h"

namespace devscope {
namespace {

constexpr char kResource[] = "example.com/dev";

// The samples of tracked device `i`, in the text a devicedir metrics.prom holds.
struct Telemetry {
  const char* name;
  Sample::Kind kind;
  double value;
};
std::vector<Telemetry> DeviceTelemetry(int i, double value) {
  const double v = value + 0.001 * i;
  return {{"devscope_device_utilization_ratio", Sample::Kind::kGauge, 0.5 + v / 1000},
          {"devscope_device_temperature_celsius", Sample::Kind::kGauge, 50 + v},
          {"devscope_device_power_watts", Sample::Kind::kGauge, 200 + v},
          {"devscope_device_memory_used_bytes", Sample::Kind::kGauge, 1e9 + i},
          {"devscope_device_memory_total_bytes", Sample::Kind::kGauge, 1.6e10},
          {"devscope_device_energy_joules_total", Sample::Kind::kCounter, 1e6 + v}};
}

}  // namespace

std::vector<v1::PodResources> BenchFleet(int arrivals) {
  std::vector<v1::PodResources> fleet;
  int next = 0;
  for (int p = 0; p < kBenchPods; ++p) {
    std::vector<v1::ContainerResources> containers;
    for (int c = 0; c < kBenchContainers; ++c) {
      std::vector<v1::ContainerDevices> devices;
      for (int d = 0; d < kBenchDevicesPerContainer; ++d, ++next) {
        devices.push_back(MakeDevices(kResource, {absl::StrCat("dev-", next)}, {next % 4}));
      }
      containers.push_back(MakeContainer(absl::StrCat("c", c), std::move(devices)));
    }
    fleet.push_back(MakePod("bulk", absl::StrCat("pod-", p), std::move(containers)));
  }
  for (int k = 0; k < arrivals; ++k) {
    std::vector<v1::ContainerDevices> devices;
    const int shared = k % kBenchTrackedDevices;
    devices.push_back(MakeDevices(kResource, {absl::StrCat("dev-", shared)}, {shared % 4}));
    for (int d = 0; d < 3; ++d, ++next) {
      devices.push_back(MakeDevices(kResource, {absl::StrCat("dev-", next)}, {next % 4}));
    }
    fleet.push_back(
        MakePod("bulk", absl::StrCat("arrival-", k), {MakeContainer("main", std::move(devices))}));
  }
  return fleet;
}

std::shared_ptr<PodResourcesSnapshot> BenchPodsSnapshot(int arrivals) {
  v1::ListPodResourcesResponse list;
  for (v1::PodResources& pod : BenchFleet(arrivals)) *list.add_pod_resources() = std::move(pod);
  auto snapshot = std::make_shared<PodResourcesSnapshot>();
  snapshot->pods = ConvertPods(list);
  return snapshot;
}

void WriteBenchDevicedir(const std::string& path, double value) {
  for (int i = 0; i < kBenchTrackedDevices; ++i) {
    const std::string dir = absl::StrCat(path, "/dev-", i);
    std::filesystem::create_directories(dir);
    std::ofstream(dir + "/resource") << kResource << "\n";
    std::ofstream(dir + "/numa_node") << i % 4 << "\n";
    std::ofstream(dir + "/info") << "vendor=Example\nmodel=W100\n";
    std::string metrics;
    for (const Telemetry& t : DeviceTelemetry(i, value)) {
      if (t.kind == Sample::Kind::kCounter)
        absl::StrAppend(&metrics, "# TYPE ", t.name, " counter\n");
      absl::StrAppend(&metrics, t.name, " ", t.value, "\n");
    }
    // Written beside and renamed, as a device's exporter would.
    std::ofstream(dir + "/metrics.prom.tmp") << metrics;
    std::filesystem::rename(dir + "/metrics.prom.tmp", dir + "/metrics.prom");
  }
}

std::shared_ptr<DeviceSnapshot> BenchDeviceSnapshot(double value) {
  auto snapshot = std::make_shared<DeviceSnapshot>();
  CollectorReport report{.collector = "devicedir", .up = true};
  for (int i = 0; i < kBenchTrackedDevices; ++i) {
    DeviceReport d;
    d.info.id = absl::StrCat("dev-", i);
    d.info.resource = kResource;
    d.info.advertise = true;
    d.info.vendor = "Example";
    d.info.model = "W100";
    d.info.numa_node = i % 4;
    for (const Telemetry& t : DeviceTelemetry(i, value)) {
      d.samples.push_back({.name = t.name, .kind = t.kind, .value = t.value});
    }
    report.devices.push_back(std::move(d));
  }
  snapshot->collectors.push_back(std::move(report));
  return snapshot;
}

}  // namespace devscope
