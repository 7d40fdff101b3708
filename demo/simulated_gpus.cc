#include "demo/simulated_gpus.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "demo/standin_pod_resources.h"

namespace devscope {

namespace fs = std::filesystem;

// The fake library's set-up calls (test/collectors/fake_nvml/fake_nvml.h), found with dlsym.
struct SimulatedGpus::Api {
  int (*set)(int slot, const char* attr, unsigned long long value);
  void (*set_nvlink)(int slot, unsigned link, int active);
  int (*set_nvlink_counter)(int slot, unsigned link, const char* counter, unsigned long long value);
  void (*inject_xid)(int slot, unsigned long long xid, unsigned gpu_instance);
  void (*set_driver_version)(const char* version, int cuda);
};

namespace {

constexpr char kGpu0[] = "GPU-de300000-0000-4000-8000-000000000000";
constexpr char kGpu1[] = "GPU-de300000-0000-4000-8000-000000000001";
constexpr unsigned long long kGiB = 1ULL << 30;

// Where the build puts the fake library, relative to the devscope binary (the build tree's
// test/collectors/; DEVSCOPE_DEMO_FAKE_NVML, set by test/collectors/CMakeLists.txt when the
// tests are built).
absl::StatusOr<std::string> FakeLibraryPath() {
#ifdef DEVSCOPE_DEMO_FAKE_NVML
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return absl::NotFoundError("cannot read /proc/self/exe");
  const fs::path library = self.parent_path() / DEVSCOPE_DEMO_FAKE_NVML;
  if (!fs::exists(library, ec)) {
    return absl::NotFoundError(absl::StrCat("no fake NVML library at ", library.string(),
                                            " (the build tree's; an installed devscope has none)"));
  }
  return library.string();
#else
  return absl::NotFoundError("devscope was built without its tests, so without the fake NVML");
#endif
}

// A process of a container: its cgroup file, cgroup v2 with the systemd driver and containerd.
void WriteCgroup(const fs::path& procfs, int pid, char container) {
  fs::create_directories(procfs / absl::StrCat(pid));
  std::ofstream(procfs / absl::StrCat(pid) / "cgroup")
      << "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"
      << std::string(8, container) << ".slice/cri-containerd-" << std::string(64, container)
      << ".scope\n";
}

// GPU 0: an A100 (row remapping), time-sliced by the pods' processes 2001 and 2002 and a process
// (2003) of a container the runtime does not list. GPU 1: a V100 (page retirement), process 2101
// of the pod that claims it through DRA.
std::string Scenario() {
  std::string s = absl::StrCat("gpu ", kGpu0, " 00000000:3B:00.0 NVIDIA A100-SXM4-40GB\n", "gpu ",
                               kGpu1, " 00000000:86:00.0 Tesla V100-SXM2-32GB\n");
  for (int slot : {0, 1}) {
    absl::StrAppend(&s, "set ", slot, " minor ", slot, "\nset ", slot, " mem_total ", 40 * kGiB,
                    "\nset ", slot, " max_clock_sm ", slot == 0 ? 1410 : 1530, "\nset ", slot,
                    " max_clock_mem ", slot == 0 ? 1215 : 877, "\nset ", slot,
                    " clock_events_supported 511\nset ", slot, " power_limit_mw ",
                    slot == 0 ? 400000 : 300000, "\nset ", slot, " ecc_uncorrected 0\nset ", slot,
                    " process_utilization 1\n");
  }
  absl::StrAppend(&s, "set 0 mem_reserved ", kGiB / 2,
                  "\nset 0 remapped_correctable 2\nset 0 remapped_uncorrectable 0\n"
                  "set 0 remap_pending 0\nset 0 remap_failed 0\n"
                  "set 1 retired_sbe 1\nset 1 retired_dbe 0\nset 1 retired_pending 0\n");
  absl::StrAppend(&s, "process 0 compute 2001 ", 8 * kGiB, "\nprocess 0 compute 2002 ", 6 * kGiB,
                  "\nprocess 0 graphics 2003 ", kGiB, "\nprocess 1 compute 2101 ", 12 * kGiB,
                  "\nsample 0 2001 45 12 0 0\nsample 0 2002 25 8 10 0\n",
                  "sample 1 2101 60 30 20 15\n");
  return s;
}

template <typename F>
bool Find(void* handle, const char* name, F*& out) {
  out = reinterpret_cast<F*>(dlsym(handle, name));
  return out != nullptr;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SimulatedGpus>> SimulatedGpus::Start(const fs::path& procfs,
                                                                    const fs::path& devfs,
                                                                    const fs::path& scenario) {
  absl::StatusOr<std::string> library = FakeLibraryPath();
  if (!library.ok()) return library.status();
  WriteCgroup(procfs, 2001, 'a');
  WriteCgroup(procfs, 2002, 'b');
  WriteCgroup(procfs, 2003, 'c');
  WriteCgroup(procfs, 2101, 'd');
  for (const char* node : {"nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm"}) {
    std::ofstream(devfs / node).put('\n');
  }
  std::ofstream(scenario) << Scenario();
  // The library reads its scenario as it loads; the collector's dlopen later gets this handle.
  setenv("FAKE_NVML_SCENARIO", scenario.c_str(), 1);
  void* handle = dlopen(library->c_str(), RTLD_NOW | RTLD_LOCAL);
  unsetenv("FAKE_NVML_SCENARIO");
  if (handle == nullptr) return absl::NotFoundError(absl::StrCat("dlopen: ", dlerror()));
  auto api = std::make_unique<Api>();
  if (!Find(handle, "fake_nvml_set", api->set) ||
      !Find(handle, "fake_nvml_set_nvlink", api->set_nvlink) ||
      !Find(handle, "fake_nvml_set_nvlink_counter", api->set_nvlink_counter) ||
      !Find(handle, "fake_nvml_inject_xid", api->inject_xid) ||
      !Find(handle, "fake_nvml_set_driver_version", api->set_driver_version)) {
    dlclose(handle);
    return absl::NotFoundError(absl::StrCat(*library, " is not the fake NVML library"));
  }
  api->set_driver_version("550.54.15", 12040);
  for (unsigned link = 0; link < 2; ++link) api->set_nvlink(0, link, 1);
  auto gpus = std::unique_ptr<SimulatedGpus>(
      new SimulatedGpus(std::move(*library), handle, std::move(api)));
  gpus->Tick(0, 0);
  return gpus;
}

SimulatedGpus::SimulatedGpus(std::string library, void* handle, std::unique_ptr<Api> api)
    : library_(std::move(library)), handle_(handle), api_(std::move(api)) {}

SimulatedGpus::~SimulatedGpus() { dlclose(handle_); }

std::vector<StandinContainer> SimulatedGpus::Containers() const {
  return {{std::string(64, 'a'), "ml", "finetune-a", "trainer"},
          {std::string(64, 'b'), "ml", "finetune-b", "trainer"},
          {std::string(64, 'd'), "ml", "inference-7f9c", "inference"}};
}

std::vector<v1::PodResources> SimulatedGpus::SharingPods() const {
  // NVIDIA's plugin hands each time-sliced replica out as <UUID>::<replica>.
  std::vector<v1::PodResources> pods;
  int replica = 0;
  for (const char* name : {"finetune-a", "finetune-b"}) {
    const std::string device = absl::StrCat(kGpu0, "::", replica++);
    pods.push_back(MakePod(
        "ml", name, {MakeContainer("trainer", {MakeDevices("nvidia.com/gpu", {device}, {0})})}));
  }
  return pods;
}

void SimulatedGpus::Tick(double t, int second) {
  for (int slot : {0, 1}) {
    const double busy = 0.5 + 0.4 * std::sin(t / 25.0 + slot);
    const double watts = (slot == 0 ? 90 : 70) + 260 * busy;
    energy_mj_[slot] += watts * 1000;  // one tick is one second
    const auto set = [&](const char* attr, double value) {
      api_->set(slot, attr, static_cast<unsigned long long>(value));
    };
    set("util_gpu", 75 + 20 * busy);
    set("util_memory", 20 + 30 * busy);
    set("util_encoder", slot == 0 ? 10 : 20 + 10 * busy);
    set("util_decoder", slot == 0 ? 0 : 15);
    set("mem_used", (slot == 0 ? 16 : 14) * kGiB + busy * kGiB);
    set("mem_free", (slot == 0 ? 23.5 : 26) * kGiB - busy * kGiB);
    set("temperature", 45 + 30 * busy);
    set("mem_temperature", 50 + 25 * busy);
    set("power_mw", watts * 1000);
    set("energy_mj", energy_mj_[slot]);
    set("clock_sm", (slot == 0 ? 1100 : 1300) + 300 * busy);
    set("clock_mem", slot == 0 ? 1215 : 877);
    // Busy: held at the power cap (sw_power_cap); quiet: idle.
    set("clock_events", busy > 0.8 ? 0x4 : (busy < 0.2 ? 0x1 : 0));
    set("pcie_tx_kb", 2e6 * busy);
    set("pcie_rx_kb", 3e6 * busy);
    set("pcie_replays", second / 300);
    set("ecc_corrected", second / 60);
  }
  nvlink_kib_ += 20 * 1024 * 1024;  // 20 GiB/s over each link
  for (unsigned link = 0; link < 2; ++link) {
    api_->set_nvlink_counter(0, link, "tx_kib", nvlink_kib_);
    api_->set_nvlink_counter(0, link, "rx_kib", nvlink_kib_ / 2);
    for (const char* counter : {"replay", "recovery", "crc_flit", "crc_data", "ecc_data"}) {
      api_->set_nvlink_counter(0, link, counter, 0);
    }
  }
  if (second % 120 == 5) api_->inject_xid(0, 13, 0xFFFFFFFF);
}

v1::DynamicResource DemoGpuClaim(const std::string& ns) {
  return MakeClaim(ns, "inference-gpu", "gpu.nvidia.com", "demo-node", "gpu-1", std::nullopt,
                   {"k8s.gpu.nvidia.com/device=gpu-1"});
}

}  // namespace devscope
