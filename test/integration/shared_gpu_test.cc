// A GPU that two pods share, through the real binary: the fake NVML library reports the GPU's
// processes (FAKE_NVML_SCENARIO), a fixture procfs gives their cgroups, the CRI stand-in names the
// containers, and devscope_device_holder_* split the GPU's memory and utilisation between the two
// pods, the rest unattributed, summing to the GPU's own values. A container runtime that goes
// away turns the split off while the rest is still served.
#include <stdlib.h>

#include <filesystem>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "demo/standin_container_runtime.h"
#include "demo/standin_pod_resources.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/integration/devscope_process.h"
#include "test/support/temp_dir.h"

namespace devscope {
namespace {

using ::testing::HasSubstr;

constexpr char kGpu[] = "GPU-8c4b5e7a-1111-2222-3333-444455556666";
constexpr double kGiB = 1024.0 * 1024 * 1024;

std::string Cgroup(char id) {
  return absl::StrCat(
      "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/"
      "cri-containerd-",
      std::string(64, id), ".scope\n");
}

// The value of `name` for the holder pod `pod` ("" : the unattributed share); -1 when absent.
double Share(const std::string& body, const std::string& name, const std::string& pod) {
  const auto samples = FindSamples(body, name, {{"device", kGpu}, {"pod", pod}});
  return samples.size() == 1 ? samples[0].value : -1;
}

TEST(SharedGpuTest, EachPodSeesItsOwnShareAndTheSharesSumToTheGpu) {
  const std::string dir = MakeTempDir();
  // Two pods' processes, one of a container the runtime does not list, one whose cgroup is gone.
  WriteFile(dir + "/proc/1001/cgroup", Cgroup('a'));
  WriteFile(dir + "/proc/1002/cgroup", Cgroup('b'));
  WriteFile(dir + "/proc/1003/cgroup", Cgroup('c'));
  for (const char* node : {"nvidia0", "nvidiactl"}) WriteFile(dir + "/dev/" + node, "");
  std::filesystem::create_directories(dir + "/sys");
  WriteFile(dir + "/scenario",
            absl::StrCat("gpu ", kGpu, " 00000000:3B:00.0 NVIDIA A100-SXM4-40GB\n",
                         "set 0 minor 0\nset 0 util_gpu 90\nset 0 util_memory 20\nset 0 mem_total ",
                         16ULL << 30, "\nset 0 mem_used ", 10ULL << 30, "\nset 0 mem_free ",
                         6ULL << 30, "\nset 0 process_utilization 1\n", "process 0 compute 1001 ",
                         2ULL << 30, "\n", "process 0 compute 1002 ", 3ULL << 30, "\n",
                         "process 0 compute 1003 ", 1ULL << 30, "\n", "process 0 graphics 1004 ",
                         512ULL << 20, "\n", "sample 0 1001 40 10 0 0\nsample 0 1002 30 5 0 0\n"));
  WriteFile(dir + "/config.yaml",
            absl::StrCat(
                "collectors:\n  interval: 500ms\n  nvml:\n    library: ", FAKE_NVML_LIBRARY, "\n"));
  ASSERT_EQ(setenv("FAKE_NVML_SCENARIO", (dir + "/scenario").c_str(), 1), 0);

  auto kubelet = PodResourcesStandin::Start(dir + "/kubelet.sock");
  ASSERT_TRUE(kubelet.ok()) << kubelet.status();
  // Time-sliced: each pod holds a replica of the one GPU.
  (*kubelet)->SetPods(
      {MakePod(
           "ml", "trainer-a",
           {MakeContainer("main", {MakeDevices("nvidia.com/gpu", {absl::StrCat(kGpu, "::0")})})}),
       MakePod(
           "ml", "trainer-b",
           {MakeContainer("main", {MakeDevices("nvidia.com/gpu", {absl::StrCat(kGpu, "::1")})})})});
  auto runtime = ContainerRuntimeStandin::Start(dir + "/cri.sock");
  ASSERT_TRUE(runtime.ok()) << runtime.status();
  (*runtime)->SetContainers({{std::string(64, 'a'), "ml", "trainer-a", "main"},
                             {std::string(64, 'b'), "ml", "trainer-b", "main"}});

  auto process = DevscopeProcess::Start(
      {"--kubelet.pod-resources-socket=" + dir + "/kubelet.sock",
       "--web.listen-address=127.0.0.1:0", "--pod-resources.interval=200ms", "--no-device-plugin",
       "--collector.nvml", "--no-collector.drm", "--no-collector.netdev",
       "--path.devfs=" + dir + "/dev", "--path.sysfs=" + dir + "/sys",
       "--path.procfs=" + dir + "/proc", "--container-runtime.socket=" + dir + "/cri.sock",
       "--container-runtime.interval=1s", "--config.file=" + dir + "/config.yaml"});
  unsetenv("FAKE_NVML_SCENARIO");
  ASSERT_TRUE(process.ok()) << process.status();

  std::string body = ScrapeUntil(
      **process,
      [](const std::string& b) {
        return Share(b, "devscope_device_holder_utilization_ratio", "trainer-a") > 0 &&
               Share(b, "devscope_device_holder_memory_used_bytes", "trainer-b") > 0;
      },
      absl::Seconds(30));
  EXPECT_EQ(PromtoolCheck(body), "");
  EXPECT_EQ(FindSamples(body, "devscope_process_attribution_up")[0].value, 1) << body;
  const std::string memory = "devscope_device_holder_memory_used_bytes";
  EXPECT_DOUBLE_EQ(Share(body, memory, "trainer-a"), 2 * kGiB);
  EXPECT_DOUBLE_EQ(Share(body, memory, "trainer-b"), 3 * kGiB);
  // The rest of the 10 GiB used: the unknown container's 1 GiB, the gone process's 0.5 GiB, and
  // what no process holds.
  EXPECT_DOUBLE_EQ(Share(body, memory, ""), 5 * kGiB);
  const std::string sm = "devscope_device_holder_utilization_ratio";
  EXPECT_NEAR(Share(body, sm, "trainer-a"), 0.4, 1e-9);
  EXPECT_NEAR(Share(body, sm, "trainer-b"), 0.3, 1e-9);
  EXPECT_NEAR(Share(body, sm, ""), 0.2, 1e-9);
  const std::string copy = "devscope_device_holder_memory_copy_utilization_ratio";
  EXPECT_NEAR(Share(body, copy, "trainer-a"), 0.1, 1e-9);
  EXPECT_NEAR(Share(body, copy, "trainer-b"), 0.05, 1e-9);
  EXPECT_NEAR(Share(body, copy, ""), 0.05, 1e-9);
  const std::string processes = "devscope_device_holder_processes";
  EXPECT_EQ(Share(body, processes, "trainer-a"), 1);
  EXPECT_EQ(Share(body, processes, ""), 2);
  // The shares sum to the GPU's own values.
  for (const auto& [holder, whole] :
       std::map<std::string, std::string>{{memory, "devscope_device_memory_used_bytes"},
                                          {sm, "devscope_device_utilization_ratio"}}) {
    double sum = 0;
    for (const auto& s : FindSamples(body, holder, {{"device", kGpu}})) sum += s.value;
    const auto device = FindSamples(body, whole, {{"device", kGpu}});
    ASSERT_FALSE(device.empty()) << whole;
    EXPECT_NEAR(sum, device[0].value, 1e-6 * device[0].value) << holder;
  }

  // The runtime goes away: attribution off, the GPU's own series stay.
  runtime->reset();
  body = ScrapeUntil(
      **process,
      [](const std::string& b) {
        const auto up = FindSamples(b, "devscope_process_attribution_up");
        return !up.empty() && up[0].value == 0;
      },
      absl::Seconds(30));
  for (const auto& family : {memory, sm, copy, processes}) {
    EXPECT_TRUE(FindSamples(body, family).empty()) << family;
  }
  EXPECT_FALSE(FindSamples(body, "devscope_device_utilization_ratio", {{"device", kGpu}}).empty());
  EXPECT_EQ(PromtoolCheck(body), "");

  EXPECT_EQ((*process)->Stop(), 0);
  const std::string log = (*process)->Stderr();
  EXPECT_THAT(log, HasSubstr("pid=1003 container=" + std::string(64, 'c')));
  EXPECT_THAT(log, HasSubstr("pid=1004"));
  RemoveTree(dir);
}

}  // namespace
}  // namespace devscope
