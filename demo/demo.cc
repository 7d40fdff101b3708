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
#include "collectors/netdev.h"
#include "collectors/nvml.h"
#include "common/log.h"
#include "common/signals.h"
#include "demo/simulated_gpus.h"
#include "demo/simulated_nics.h"
#include "demo/standin_container_runtime.h"
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
      {"net", "packet-router", kDemoVfResource, 1, {8, 9}, false, false},
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
    // The inference pod also holds a GPU through NVIDIA's DRA driver.
    std::vector<v1::DynamicResource> claims;
    if (p.claim) claims.push_back(DemoGpuClaim(p.ns));
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
  for (const char* resource : {kWidget, kFpga, kDemoVfResource}) {
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

// The simulated node: its directories under a fresh temporary root, and what moves in it.
struct DemoNode {
  fs::path root;
  fs::path devicedir;  // the devicedir collector's
  fs::path devfs;
  fs::path share;   // mounted into the widgets' containers
  fs::path sysfs;   // the NICs' netdev tree
  fs::path procfs;  // the GPU processes' cgroups
  std::vector<SimulatedDevice> devices;
  std::unique_ptr<SimulatedNics> nics;
  std::unique_ptr<SimulatedGpus> gpus;  // null without the fake NVML library
  std::string no_gpus;                  // why gpus is null
};

absl::StatusOr<DemoNode> MakeNode() {
  char pattern[] = "/tmp/devscope-demo.XXXXXX";
  if (mkdtemp(pattern) == nullptr)
    return absl::InternalError("cannot create a temporary directory");
  // The devicedir must not be writable by group or others whatever the caller's umask says.
  umask(022);
  DemoNode node;
  node.root = pattern;
  node.devicedir = node.root / "devices";
  node.devfs = node.root / "dev";
  node.share = node.root / "share";
  node.sysfs = node.root / "sys";
  node.procfs = node.root / "proc";
  std::error_code ec;
  for (const fs::path& dir : {node.root / "pod-resources", node.root / "device-plugins",
                              node.root / "cdi", node.devicedir, node.devfs, node.share, node.sysfs,
                              node.procfs}) {
    fs::create_directories(dir, ec);
  }
  for (int i = 0; i < 8; ++i) node.devices.push_back({absl::StrCat("widget-", i), kWidget, i % 2});
  for (int i = 0; i < 2; ++i) node.devices.push_back({absl::StrCat("fpga-", i), kFpga, i});
  for (size_t i = 0; i < node.devices.size(); ++i) {
    CreateDevice(node.devicedir, node.devfs, node.share, node.devices[i], static_cast<int>(i));
    WriteTelemetry(node.devicedir, node.devices[i], 0, static_cast<int>(i));
  }
  node.nics = std::make_unique<SimulatedNics>(node.sysfs);
  auto gpus = SimulatedGpus::Start(node.procfs, node.devfs, node.root / "nvml-scenario");
  if (gpus.ok()) {
    node.gpus = std::move(*gpus);
  } else {
    node.no_gpus = std::string(gpus.status().message());
  }
  return node;
}

// The agent's options for the simulated node: its sockets and roots, devicedir and netdev on,
// nvml on the fake library when there is one, per-process attribution through the CRI stand-in.
void Configure(AgentOptions& options, const DemoNode& node) {
  options.pod_resources.socket_path = (node.root / "pod-resources" / "kubelet.sock").string();
  options.device_plugin.device_plugins_dir = (node.root / "device-plugins").string();
  options.device_plugin.enabled = true;
  // The simulated devices' CDI specs stay in the demo's root: the host's runtimes read /var/run/cdi.
  options.device_plugin.cdi_spec_dir = (node.root / "cdi").string();
  options.roots.devfs = node.devfs.string();
  options.roots.sysfs = node.sysfs.string();
  options.collector_runs.interval = absl::Seconds(1);
  options.attribution.procfs = node.procfs.string();
  options.attribution.socket_path = (node.root / "cri.sock").string();
  options.attribution.interval = absl::Seconds(2);
  for (CollectorChoice& choice : options.collectors.choices()) {
    const std::string& name = choice.spec->name();
    const bool on = name == "devicedir" || name == "netdev" || (name == "nvml" && node.gpus);
    choice.toggle = on ? CollectorToggle::kOn : CollectorToggle::kOff;
  }
  DevicedirOptions& devicedir = *options.collectors.OptionsOf<DevicedirOptions>("devicedir");
  devicedir.path = node.devicedir.string();
  // The simulated devicedir is the demo's own: whoever runs it owns it (docs/security.md).
  devicedir.owner = absl::StrCat(geteuid());
  options.collectors.OptionsOf<NetdevOptions>("netdev")->advertise_resource = kDemoVfResource;
  if (node.gpus) options.collectors.OptionsOf<NvmlOptions>("nvml")->library = node.gpus->library();
}

// The kubelet's side (pod-resources, registration) and the container runtime's.
struct Standins {
  std::unique_ptr<PodResourcesStandin> pod_resources;
  RegistrationStandin kubelet;
  std::unique_ptr<ContainerRuntimeStandin> runtime;

  absl::Status Start(const AgentOptions& options, const DemoNode& node) {
    auto started = PodResourcesStandin::Start(options.pod_resources.socket_path);
    if (!started.ok()) return started.status();
    pod_resources = std::move(*started);
    if (absl::Status s = kubelet.Start(options.device_plugin.device_plugins_dir); !s.ok()) return s;
    auto cri = ContainerRuntimeStandin::Start(options.attribution.socket_path);
    if (!cri.ok()) return cri.status();
    runtime = std::move(*cri);
    if (node.gpus) runtime->SetContainers(node.gpus->Containers());
    // The kubelet answers GetAllocatableResources from the start; devscope asks for it at once.
    pod_resources->SetAllocatable(Allocatable(kubelet, node.devices));
    return absl::OkStatus();
  }
  void Stop() {
    runtime.reset();
    kubelet.Stop();
    if (pod_resources) pod_resources->Stop();
  }
};

// Once devscope's plugin has registered: the pods, admitted through it, and NVIDIA's sharers.
void AdmitWhenRegistered(Standins& standins, const DemoNode& node) {
  auto registered = [](const std::vector<v1beta1::Device>& d) { return !d.empty(); };
  for (const char* resource : {kWidget, kFpga, kDemoVfResource}) {
    if (!standins.kubelet.WaitForDevices(resource, registered, absl::Seconds(10))) {
      Log().warn("demo: the device plugin did not register {} in time; pods hold none", resource);
    }
  }
  standins.pod_resources->SetAllocatable(Allocatable(standins.kubelet, node.devices));
  std::vector<v1::PodResources> pods = AdmitPods(standins.kubelet);
  if (node.gpus) {
    for (v1::PodResources& pod : node.gpus->SharingPods()) pods.push_back(std::move(pod));
  }
  standins.pod_resources->SetPods(std::move(pods));
}

void PrintBanner(const Agent& agent, const DemoNode& node) {
  std::cout << "devscope demo: metrics at " << agent.metrics_url() << "\n"
            << "  files under " << node.root.string()
            << " (devices/ is the devicedir, sys/ the NICs' netdev tree)\n"
            << "  simulated: 8 widgets and 2 FPGAs (devicedir), a NIC with 2 SR-IOV VFs (netdev)";
  if (node.gpus) {
    std::cout << ", 2 NVIDIA GPUs (fake NVML " << node.gpus->library()
              << "): one shared by two pods, one held through a DRA claim\n";
  } else {
    std::cout << "\n  no GPUs: " << node.no_gpus << "\n";
  }
  std::cout << "  Ctrl-C to stop\n" << std::flush;
}

// One second of the simulation: devicedir telemetry moves, and every 45 s one device faults for
// 15 s, which the plugin reports Unhealthy (allocatable drops); NIC counters and links, GPUs.
// Returns true when a device's health may have changed.
bool Tick(DemoNode& node, std::mt19937& random, absl::Time now, double t, int second) {
  bool health_changed = node.nics->Tick(t);
  if (node.gpus) node.gpus->Tick(t, second);
  for (size_t i = 0; i < node.devices.size(); ++i) {
    SimulatedDevice& device = node.devices[i];
    WriteTelemetry(node.devicedir, device, t, static_cast<int>(i));
    if (device.faulty_until != absl::InfinitePast() && now >= device.faulty_until) {
      device.faulty_until = absl::InfinitePast();
      WriteAtomically(node.devicedir / device.id / "health", "Healthy\n");
      Log().info("demo: device={} recovered", device.id);
      health_changed = true;
    }
  }
  if (second % 45 == 0) {
    SimulatedDevice& device = node.devices[random() % node.devices.size()];
    if (device.faulty_until == absl::InfinitePast()) {
      device.faulty_until = now + absl::Seconds(15);
      WriteAtomically(node.devicedir / device.id / "health", "Unhealthy\n");
      Log().info("demo: device={} faulted for 15s", device.id);
      health_changed = true;
    }
  }
  return health_changed;
}

void Simulate(DemoNode& node, Standins& standins) {
  std::mt19937 random(42);
  const absl::Time start = absl::Now();
  for (int second = 1;; ++second) {
    if (WaitForTerminationSignal(absl::Seconds(1)) != 0) break;
    const absl::Time now = absl::Now();
    if (Tick(node, random, now, absl::ToDoubleSeconds(now - start), second)) {
      // Let the change travel collector -> plugin -> stand-in before re-reading.
      absl::SleepFor(absl::Milliseconds(300));
      standins.pod_resources->SetAllocatable(Allocatable(standins.kubelet, node.devices));
    }
  }
}

}  // namespace

int RunDemo(AgentOptions options) {
  absl::StatusOr<DemoNode> node = MakeNode();
  if (!node.ok()) {
    Log().error("demo: {}", node.status().ToString());
    return 1;
  }
  Configure(options, *node);
  BlockTerminationSignals();
  Standins standins;
  if (absl::Status s = standins.Start(options, *node); !s.ok()) {
    Log().error("demo: stand-ins: {}", s.ToString());
    standins.Stop();
    return 1;
  }
  auto agent = Agent::Start(options);
  if (!agent.ok()) {
    Log().error("demo: start-up failed: {}", agent.status().ToString());
    standins.Stop();
    return agent.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  AdmitWhenRegistered(standins, *node);
  PrintBanner(**agent, *node);
  Simulate(*node, standins);
  Log().info("demo: stopping");
  agent->reset();
  standins.Stop();
  node->gpus.reset();
  std::error_code ec;
  fs::remove_all(node->root, ec);
  return 0;
}

}  // namespace devscope
