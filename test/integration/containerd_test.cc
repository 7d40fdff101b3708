// Per-process attribution against a real container runtime: a private containerd (its own root,
// state, socket and configuration, started and stopped here) runs a pod and its container
// through its CRI, as the kubelet asks it to; the fake NVML library reports that container's
// process (its real PID) using a GPU; devscope, pointed at containerd's socket and the real
// /proc, splits the GPU so that the container's share carries its namespace, pod and container.
// The names can come only from containerd's ListContainers (the kubelet stand-in lists no pod),
// and the container only from the process's real /proc/PID/cgroup.
//
// Skipped, saying why, where containerd cannot run containers: not root, containerd not
// installed, or runc unable to run even a plain container (ctr run) on this machine.
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "demo/standin_pod_resources.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/integration/containerd_node.h"
#include "test/integration/devscope_process.h"
#include "test/support/temp_dir.h"

namespace devscope {
namespace {

using ::testing::HasSubstr;

constexpr char kGpu[] = "GPU-0d3c1f2e-aaaa-bbbb-cccc-ddddeeeeffff";
constexpr double kGiB = 1024.0 * 1024 * 1024;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The holder series `name` of the GPU for `labels` (namespace, pod, container); -1 when absent.
double Share(const std::string& body, const std::string& name,
             const std::map<std::string, std::string>& holder) {
  std::map<std::string, std::string> labels = holder;
  labels["device"] = kGpu;
  const auto samples = FindSamples(body, name, labels);
  return samples.size() == 1 ? samples[0].value : -1;
}

TEST(ContainerdTest, AGpuProcessOfAContainerdContainerIsCountedToItsPod) {
  if (const std::string why = PrivateContainerd::Unavailable(); !why.empty()) GTEST_SKIP() << why;
  const absl::Time began = absl::Now();
  const std::string dir = MakeTempDir();
  auto containerd = PrivateContainerd::Start(dir + "/ctd");
  ASSERT_TRUE(containerd.ok()) << containerd.status();
  if (absl::Status probe = (*containerd)->Probe(); !probe.ok()) {
    containerd->reset();
    RemoveTree(dir);
    GTEST_SKIP() << "runc cannot run a container on this machine: " << probe;
  }

  auto pod = (*containerd)
                 ->RunPod({.ns = "ml",
                           .name = "trainer",
                           .uid = "6f1c2b3a-0d4e-4f5a-9b8c-7d6e5f4a3b2c",
                           .container = "cuda",
                           .command = {"/bin/sleep", "600"}});
  ASSERT_TRUE(pod.ok()) << pod.status() << "\ncontainerd's log:\n" << (*containerd)->Log();
  // The runtime put the process in a cgroup named after the container, of the kubelet's shape.
  const std::string cgroup = ReadFile(absl::StrCat("/proc/", pod->pid, "/cgroup"));
  ASSERT_THAT(cgroup, HasSubstr("/kubepods/besteffort/pod6f1c2b3a-0d4e-4f5a-9b8c-7d6e5f4a3b2c/" +
                                pod->container_id));
  const absl::Duration pod_started = absl::Now() - began;

  // The GPU: the container's process holds 2 GiB and 40 % of the SM; this test's own process,
  // in no container of containerd's, 1 GiB (unattributed); the driver the rest.
  for (const char* node : {"nvidia0", "nvidiactl"}) WriteFile(dir + "/dev/" + node, "");
  std::filesystem::create_directories(dir + "/sys");
  WriteFile(dir + "/scenario",
            absl::StrCat("gpu ", kGpu, " 00000000:3B:00.0 NVIDIA A100-SXM4-40GB\n",
                         "set 0 minor 0\nset 0 util_gpu 90\nset 0 util_memory 20\nset 0 mem_total ",
                         16ULL << 30, "\nset 0 mem_used ", 4ULL << 30, "\nset 0 mem_free ",
                         12ULL << 30, "\nset 0 process_utilization 1\n", "process 0 compute ",
                         pod->pid, " ", 2ULL << 30, "\nprocess 0 compute ", getpid(), " ",
                         1ULL << 30, "\nsample 0 ", pod->pid, " 40 10 0 0\n"));
  WriteFile(dir + "/config.yaml",
            absl::StrCat(
                "collectors:\n  interval: 500ms\n  nvml:\n    library: ", FAKE_NVML_LIBRARY, "\n"));
  // The kubelet lists no pod: the holder's names can only come from containerd.
  auto kubelet = PodResourcesStandin::Start(dir + "/kubelet.sock");
  ASSERT_TRUE(kubelet.ok()) << kubelet.status();
  auto process = DevscopeProcess::Start(
      {"--kubelet.pod-resources-socket=" + dir + "/kubelet.sock",
       "--web.listen-address=127.0.0.1:0", "--pod-resources.interval=200ms", "--no-device-plugin",
       "--collector.nvml", "--no-collector.drm", "--no-collector.netdev",
       "--path.devfs=" + dir + "/dev", "--path.sysfs=" + dir + "/sys", "--path.procfs=/proc",
       "--container-runtime.socket=" + (*containerd)->socket_path(),
       "--container-runtime.interval=1s", "--config.file=" + dir + "/config.yaml"},
      absl::Seconds(20), {"FAKE_NVML_SCENARIO=" + dir + "/scenario"});
  ASSERT_TRUE(process.ok()) << process.status();

  const std::map<std::string, std::string> holder = {
      {"namespace", "ml"}, {"pod", "trainer"}, {"container", "cuda"}};
  const std::map<std::string, std::string> nobody = {
      {"namespace", ""}, {"pod", ""}, {"container", ""}};
  const std::string memory = "devscope_device_holder_memory_used_bytes";
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  std::string body;
  do {
    body = (*process)->HttpGet("/metrics").body;
    if (Share(body, memory, holder) > 0) break;
    absl::SleepFor(absl::Milliseconds(100));
  } while (absl::Now() < deadline);

  const auto up = FindSamples(body, "devscope_process_attribution_up");
  ASSERT_EQ(up.size(), 1u) << body;
  EXPECT_EQ(up[0].value, 1) << body;
  EXPECT_DOUBLE_EQ(Share(body, memory, holder), 2 * kGiB) << body;
  EXPECT_DOUBLE_EQ(Share(body, memory, nobody), 2 * kGiB);
  EXPECT_NEAR(Share(body, "devscope_device_holder_utilization_ratio", holder), 0.4, 1e-9);
  EXPECT_EQ(Share(body, "devscope_device_holder_processes", holder), 1);
  EXPECT_EQ(Share(body, "devscope_device_holder_processes", nobody), 1);
  EXPECT_EQ(PromtoolCheck(body), "");

  EXPECT_EQ((*process)->Stop(), 0);
  // This test's own process is unattributed, and said so.
  EXPECT_THAT((*process)->Stderr(), HasSubstr(absl::StrCat("pid=", getpid())));
  containerd->reset();
  RemoveTree(dir);
  std::cerr << "pod running after " << absl::FormatDuration(pod_started) << ", test done after "
            << absl::FormatDuration(absl::Now() - began) << "\n";
}

}  // namespace
}  // namespace devscope
