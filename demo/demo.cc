#include "demo/demo.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "agent/agent.h"
#include "collectors/devicedir.h"
#include "common/log.h"
#include "common/signals.h"
#include "demo/standin_pod_resources.h"
#include "demo/standin_registration.h"

namespace devscope {
namespace {

namespace fs = std::filesystem;

constexpr char kWidget[] = "example.com/widget";
constexpr char kFpga[] = "example.com/fpga";

// A simulated device: its devicedir entry and the state its telemetry moves from.
struct SimulatedDevice {
  std::string id;
  std::string resource;
  int numa_node = 0;
  double energy_joules = 0;
  uint64_t corrected_errors = 0;
  absl::Time faulty_until = absl::InfinitePast();
};

// Writes `text` to `path` through a rename, so readers (and inotify) never see half a file.
void WriteAtomically(const fs::path& path, const std::string& text) {
  const fs::path temporary = path.string() + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << text;
  }
  std::error_code ec;
  fs::rename(temporary, path, ec);
}

void CreateDevice(const fs::path& devicedir, const fs::path& devfs, const fs::path& share,
                  const SimulatedDevice& device, int index) {
  const fs::path dir = devicedir / device.id;
  fs::create_directories(dir);
  WriteAtomically(dir / "resource", absl::StrCat(device.resource, "\n"));
  WriteAtomically(dir / "numa_node", absl::StrCat(device.numa_node, "\n"));
  WriteAtomically(dir / "health", "Healthy\n");
  const bool fpga = device.resource == kFpga;
  WriteAtomically(dir / "info", absl::StrFormat("vendor=Example Devices\nmodel=%s\nserial=EX%06d\n"
                                                "pci_address=0000:%02x:00.0\nuuid=EX-%08x-%04d\n",
                                                fpga ? "F200 FPGA" : "W100 Widget", 1000 + index,
                                                0x3b + index, 0xdecaf000 + index, index));
  // The device node the container gets; a plain file under the demo's devfs root, so the health
  // model's "device node missing" check has something real to look at.
  const std::string node = absl::StrCat(fpga ? "fpga" : "widget", index);
  std::ofstream(devfs / node).put('\n');
  WriteAtomically(
      dir / "allocate",
      absl::StrCat("device /dev/", node, " /dev/", node, " rw\n",
                   "env EXAMPLE_VISIBLE_DEVICES=", device.id, "\n", "mount ", share.string(),
                   " /usr/share/example ro\n", "annotation example.com/serial=EX", 1000 + index,
                   "\n", "cdi example.com/", fpga ? "fpga" : "widget", "=", device.id, "\n"));
}

// New telemetry for one tick: a slow wave per device, so dashboards have something to show.
void WriteTelemetry(const fs::path& devicedir, SimulatedDevice& device, double t, int index) {
  const double busy = 0.5 + 0.45 * std::sin(t / 20.0 + index);
  const double watts = 60 + 180 * busy;
  device.energy_joules += watts;  // one tick is one second
  if (index % 3 == 0 && static_cast<int>(t) % 7 == 0) ++device.corrected_errors;
  const double memory_total = 16.0 * (1ULL << 30);
  WriteAtomically(
      devicedir / device.id / "metrics.prom",
      absl::StrFormat("# TYPE devscope_device_utilization_ratio gauge\n"
                      "devscope_device_utilization_ratio %.3f\n"
                      "# TYPE devscope_device_memory_used_bytes gauge\n"
                      "devscope_device_memory_used_bytes %.0f\n"
                      "# TYPE devscope_device_memory_total_bytes gauge\n"
                      "devscope_device_memory_total_bytes %.0f\n"
                      "# TYPE devscope_device_temperature_celsius gauge\n"
                      "devscope_device_temperature_celsius %.1f\n"
                      "# TYPE devscope_device_power_watts gauge\n"
                      "devscope_device_power_watts %.1f\n"
                      "# TYPE devscope_device_energy_joules_total counter\n"
                      "devscope_device_energy_joules_total %.0f\n"
                      "# TYPE devscope_device_errors_total counter\n"
                      "devscope_device_errors_total{kind=\"corrected\"} %d\n",
                      busy, memory_total * (0.2 + 0.7 * busy), memory_total, 38 + 40 * busy, watts,
                      device.energy_joules, device.corrected_errors));
}

struct DemoPod {
  std::string ns;
  std::string name;
  std::string resource;
  int devices;
  std::vector<int64_t> cpus;
  bool sidecar;
  bool claim;
};

// Admits the demo pods through the plugin (GetPreferredAllocation + Allocate) and lists them in
// pod-resources with exactly the devices the plugin handed out.
std::vector<v1::PodResources> AdmitPods(RegistrationStandin& kubelet) {
  const std::vector<DemoPod> demo_pods = {
      {"ml", "trainer-0", kWidget, 2, {2, 3, 4, 5}, true, false},
      {"ml", "inference-7f9c", kWidget, 1, {}, false, true},
      {"video", "transcoder-1", kFpga, 1, {6, 7}, false, false},
      {"default", "batch-job-x2k", kWidget, 1, {}, false, false},
  };
  std::vector<v1::PodResources> pods;
  for (const DemoPod& p : demo_pods) {
    std::vector<std::string> ids;
    auto response = kubelet.Admit(p.resource, p.devices, &ids);
    if (!response.ok()) {
      Log().warn("demo: could not admit pod={}/{} reason=\"{}\"", p.ns, p.name,
                 response.status().ToString());
      continue;
    }
    std::vector<v1::ContainerResources> containers;
    if (p.sidecar) containers.push_back(MakeContainer("log-shipper"));
    std::vector<v1::DynamicResource> claims;
    if (p.claim) {
      claims.push_back(MakeClaim(p.ns, "shared-accelerator", "accel.example.com", "node-pool-a",
                                 "accel-0", std::nullopt, {"accel.example.com/device=accel-0"}));
    }
    std::vector<v1::ContainerMemory> memory;
    if (!p.cpus.empty()) memory.push_back(MakeMemory("hugepages-2Mi", 512ULL << 20, {0}));
    // The kubelet reports the NUMA nodes of the devices it assigned, as the plugin declared them.
    std::set<int64_t> numa;
    for (const v1beta1::Device& device : kubelet.Devices(p.resource)) {
      if (std::find(ids.begin(), ids.end(), device.id()) == ids.end()) continue;
      for (const auto& node : device.topology().nodes()) numa.insert(node.id());
    }
    containers.push_back(MakeContainer(p.name.substr(0, p.name.find('-')),
                                       {MakeDevices(p.resource, ids, {numa.begin(), numa.end()})},
                                       p.cpus, memory, claims));
    pods.push_back(MakePod(p.ns, p.name, containers));
    Log().info("demo: admitted pod={}/{} devices={}", p.ns, p.name, absl::StrJoin(ids, ","));
  }
  return pods;
}

// What GetAllocatableResources answers: the healthy devices the plugin streams, with topology.
// Before the plugin has registered, the simulated devices stand in for the stream.
v1::AllocatableResourcesResponse Allocatable(const RegistrationStandin& kubelet,
                                             const std::vector<SimulatedDevice>& simulated) {
  v1::AllocatableResourcesResponse allocatable;
  for (const char* resource : {kWidget, kFpga}) {
    const std::vector<v1beta1::Device> streamed = kubelet.Devices(resource);
    for (const v1beta1::Device& device : streamed) {
      if (device.health() != "Healthy") continue;
      std::vector<int64_t> numa;
      for (const auto& node : device.topology().nodes()) numa.push_back(node.id());
      *allocatable.add_devices() = MakeDevices(resource, {device.id()}, numa);
    }
    if (!streamed.empty()) continue;
    for (const SimulatedDevice& device : simulated) {
      if (device.resource == resource) {
        *allocatable.add_devices() = MakeDevices(resource, {device.id}, {device.numa_node});
      }
    }
  }
  for (int64_t cpu = 2; cpu < 16; ++cpu) allocatable.add_cpu_ids(cpu);
  *allocatable.add_memory() = MakeMemory("hugepages-2Mi", 4ULL << 30, {0});
  *allocatable.add_memory() = MakeMemory("hugepages-2Mi", 4ULL << 30, {1});
  return allocatable;
}

}  // namespace

int RunDemo(AgentOptions options) {
  char pattern[] = "/tmp/devscope-demo.XXXXXX";
  if (mkdtemp(pattern) == nullptr) {
    Log().error("demo: cannot create a temporary directory");
    return 1;
  }
  const fs::path root = pattern;
  // The devicedir must not be writable by group or others whatever the caller's umask says.
  umask(022);
  const fs::path devicedir = root / "devices";
  const fs::path devfs = root / "dev";
  const fs::path share = root / "share";
  std::error_code ec;
  for (const fs::path& dir :
       {root / "pod-resources", root / "device-plugins", devicedir, devfs, share}) {
    fs::create_directories(dir, ec);
  }

  std::vector<SimulatedDevice> devices;
  for (int i = 0; i < 8; ++i) {
    devices.push_back({absl::StrCat("widget-", i), kWidget, i % 2});
  }
  for (int i = 0; i < 2; ++i) devices.push_back({absl::StrCat("fpga-", i), kFpga, i});
  for (size_t i = 0; i < devices.size(); ++i) {
    CreateDevice(devicedir, devfs, share, devices[i], static_cast<int>(i));
    WriteTelemetry(devicedir, devices[i], 0, static_cast<int>(i));
  }

  options.pod_resources.socket_path = (root / "pod-resources" / "kubelet.sock").string();
  options.device_plugin.device_plugins_dir = (root / "device-plugins").string();
  options.device_plugin.enabled = true;
  options.roots.devfs = devfs.string();
  options.roots.sysfs = (root / "sys").string();  // no real hardware in the demo
  options.collector_runs.interval = absl::Seconds(1);
  // The simulated devices report no processes: no container runtime to ask.
  options.attribution.socket_path.clear();
  for (CollectorChoice& choice : options.collectors.choices()) {
    const bool devicedir = choice.spec->name() == "devicedir";
    choice.toggle = devicedir ? CollectorToggle::kOn : CollectorToggle::kOff;
  }
  DevicedirOptions& devicedir_options =
      *options.collectors.OptionsOf<DevicedirOptions>("devicedir");
  devicedir_options.path = devicedir.string();
  // The simulated devicedir is the demo's own: whoever runs it owns it (docs/security.md).
  devicedir_options.owner = absl::StrCat(geteuid());

  BlockTerminationSignals();
  auto pod_resources = PodResourcesStandin::Start(options.pod_resources.socket_path);
  if (!pod_resources.ok()) {
    Log().error("demo: pod-resources stand-in: {}", pod_resources.status().ToString());
    return 1;
  }
  RegistrationStandin kubelet;
  if (absl::Status s = kubelet.Start(options.device_plugin.device_plugins_dir); !s.ok()) {
    Log().error("demo: registration stand-in: {}", s.ToString());
    return 1;
  }
  // The kubelet answers GetAllocatableResources from the start; devscope asks for it at once.
  (*pod_resources)->SetAllocatable(Allocatable(kubelet, devices));
  auto agent = Agent::Start(options);
  if (!agent.ok()) {
    Log().error("demo: start-up failed: {}", agent.status().ToString());
    return agent.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }

  auto registered = [](const std::vector<v1beta1::Device>& d) { return !d.empty(); };
  if (!kubelet.WaitForDevices(kWidget, registered, absl::Seconds(10)) ||
      !kubelet.WaitForDevices(kFpga, registered, absl::Seconds(10))) {
    Log().warn("demo: the device plugin did not register in time; pods hold nothing");
  }
  (*pod_resources)->SetAllocatable(Allocatable(kubelet, devices));
  (*pod_resources)->SetPods(AdmitPods(kubelet));

  std::cout << "devscope demo: metrics at " << (*agent)->metrics_url() << "\n"
            << "  files under " << root.string() << " (devices/ is the devicedir)\n"
            << "  Ctrl-C to stop\n"
            << std::flush;

  // The simulation: telemetry moves every second; every 45 s one device faults for 15 s, which
  // the plugin reports Unhealthy (allocatable drops) and the metrics show.
  std::mt19937 random(42);
  const absl::Time start = absl::Now();
  for (int second = 1;; ++second) {
    if (WaitForTerminationSignal(absl::Seconds(1)) != 0) break;
    const absl::Time now = absl::Now();
    const double t = absl::ToDoubleSeconds(now - start);
    bool health_changed = false;
    for (size_t i = 0; i < devices.size(); ++i) {
      SimulatedDevice& device = devices[i];
      WriteTelemetry(devicedir, device, t, static_cast<int>(i));
      if (device.faulty_until != absl::InfinitePast() && now >= device.faulty_until) {
        device.faulty_until = absl::InfinitePast();
        WriteAtomically(devicedir / device.id / "health", "Healthy\n");
        Log().info("demo: device={} recovered", device.id);
        health_changed = true;
      }
    }
    if (second % 45 == 0) {
      SimulatedDevice& device = devices[random() % devices.size()];
      if (device.faulty_until == absl::InfinitePast()) {
        device.faulty_until = now + absl::Seconds(15);
        WriteAtomically(devicedir / device.id / "health", "Unhealthy\n");
        Log().info("demo: device={} faulted for 15s", device.id);
        health_changed = true;
      }
    }
    if (health_changed) {
      // Let the change travel devicedir -> collector -> plugin -> stand-in before re-reading.
      absl::SleepFor(absl::Milliseconds(300));
      (*pod_resources)->SetAllocatable(Allocatable(kubelet, devices));
    }
  }
  Log().info("demo: stopping");
  agent->reset();
  kubelet.Stop();
  (*pod_resources)->Stop();
  fs::remove_all(root, ec);
  return 0;
}

}  // namespace devscope
