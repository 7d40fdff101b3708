// The demo's NVIDIA GPUs: the fake NVML library the build makes for the tests
// (test/collectors/fake_nvml), loaded into the demo's own process before devscope's nvml collector
// opens it, set up with two GPUs and the processes of the demo's pods, and moved every tick.
// GPU 0 is time-sliced between two pods (per-holder attribution through the process cgroups under
// the demo's procfs root and the CRI stand-in); GPU 1 is held through a DRA claim. An installed
// devscope has no fake library beside it: then there are no GPUs, and Start says why.
#ifndef DEVSCOPE_DEMO_SIMULATED_GPUS_H_
#define DEVSCOPE_DEMO_SIMULATED_GPUS_H_

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "demo/standin_container_runtime.h"
#include "podresources/v1/api.pb.h"

namespace devscope {

class SimulatedGpus {
 public:
  // Writes the processes' cgroups under `procfs`, the device nodes under `devfs`, and loads the
  // fake library set up with the GPUs. NotFound when the library is not where the build puts it.
  static absl::StatusOr<std::unique_ptr<SimulatedGpus>> Start(
      const std::filesystem::path& procfs, const std::filesystem::path& devfs,
      const std::filesystem::path& scenario);
  ~SimulatedGpus();

  // The library for collectors.nvml.library.
  const std::string& library() const { return library_; }
  // What the CRI stand-in lists: the containers of the GPUs' processes (one process's container
  // is left out, so the GPU has an unattributed share).
  std::vector<StandinContainer> Containers() const;
  // The two pods that share GPU 0 through NVIDIA's device plugin (time-slicing replicas).
  std::vector<v1::PodResources> SharingPods() const;

  // New telemetry for `t` seconds into the demo; an application XID (13, ignored for health)
  // every two minutes.
  void Tick(double t, int second);

 private:
  struct Api;
  SimulatedGpus(std::string library, void* handle, std::unique_ptr<Api> api);

  const std::string library_;
  void* const handle_;
  const std::unique_ptr<Api> api_;
  double energy_mj_[2] = {0, 0};
  unsigned long long nvlink_kib_ = 0;
};

// The DRA claim of GPU 1, by the naming of NVIDIA's DRA driver (gpu.nvidia.com, gpu-<minor>).
v1::DynamicResource DemoGpuClaim(const std::string& ns);

}  // namespace devscope

#endif  // DEVSCOPE_DEMO_SIMULATED_GPUS_H_
