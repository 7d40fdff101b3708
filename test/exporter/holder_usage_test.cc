// A device's use split by holder: shares that sum to the device's value, the unattributed rest,
// holders with no process, scaling when the processes' parts exceed the device's, and the series
// the renderer writes (promtool-clean).
#include "exporter/holder_usage.h"

#include <memory>
#include <string>
#include <vector>

#include "exporter/join.h"
#include "exporter/metrics_renderer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/integration/devscope_process.h"

namespace devscope {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr size_t kMemory = 0;
constexpr size_t kSm = 1;
constexpr size_t kEncoder = 3;

DeviceProcess Process(uint32_t pid, uint64_t memory, std::optional<double> sm) {
  DeviceProcess p;
  p.pid = pid;
  p.memory_used_bytes = memory;
  p.sm_utilization_ratio = sm;
  return p;
}

// A GPU with 10 GiB used and 90% busy, and its processes.
std::shared_ptr<DeviceSnapshot> Gpu(std::vector<DeviceProcess> processes) {
  auto snapshot = std::make_shared<DeviceSnapshot>();
  CollectorReport collector{.collector = "nvml", .up = true};
  DeviceReport gpu;
  gpu.info.id = "GPU-a";
  gpu.info.resource = "nvidia.com/gpu";
  gpu.samples.push_back({.name = "devscope_device_memory_used_bytes", .value = 10.0 * (1 << 30)});
  gpu.samples.push_back({.name = "devscope_device_utilization_ratio", .value = 0.9});
  gpu.processes = std::move(processes);
  collector.devices.push_back(std::move(gpu));
  snapshot->collectors.push_back(std::move(collector));
  return snapshot;
}

// Two pods sharing GPU-a (time-slicing), each with one container holding it.
std::shared_ptr<PodResourcesSnapshot> Sharers() {
  auto pods = std::make_shared<PodResourcesSnapshot>();
  for (const char* name : {"a", "b", "idle"}) {
    PodResources pod{.ns = "ml", .name = name};
    pod.containers.push_back(
        {.name = "main", .devices = {{.resource = "nvidia.com/gpu", .device_ids = {"GPU-a"}}}});
    pods->pods.push_back(pod);
  }
  return pods;
}

ProcessAttribution Attribution() {
  ProcessAttribution a;
  a.up = true;
  a.containers[10] = {"ml", "a", "main"};
  a.containers[11] = {"ml", "a", "main"};
  a.containers[20] = {"ml", "b", "main"};
  a.containers[30] = {"other", "monitor", "agent"};  // uses the GPU without holding it
  return a;
}

const HolderShare& ShareOf(const std::vector<HolderShare>& shares, const std::string& pod) {
  for (const HolderShare& s : shares) {
    if (s.holder.pod == pod) return s;
  }
  static const HolderShare kNone;
  ADD_FAILURE() << "no share of " << pod;
  return kNone;
}

TEST(HolderUsageTest, SharesSumToTheDevicesValue) {
  const double gib = 1 << 30;
  auto view = Join(Sharers(), Gpu({Process(10, 2 * (1ULL << 30), 0.2), Process(11, 1ULL << 30, 0.1),
                                   Process(20, 4 * (1ULL << 30), 0.3),
                                   Process(99, 1ULL << 30, 0.1)}));  // unattributed
  const auto shares = SplitByHolder(view->devices[0], Attribution());
  ASSERT_EQ(shares.size(), 4u);  // unattributed, a, b, idle
  EXPECT_EQ(shares[0].holder, ContainerName{});
  EXPECT_EQ(ShareOf(shares, "a").processes, 2u);
  EXPECT_DOUBLE_EQ(*ShareOf(shares, "a").values[kMemory], 3 * gib);
  EXPECT_DOUBLE_EQ(*ShareOf(shares, "b").values[kMemory], 4 * gib);
  EXPECT_DOUBLE_EQ(*ShareOf(shares, "idle").values[kMemory], 0);
  EXPECT_EQ(ShareOf(shares, "idle").processes, 0u);
  // The rest, the unattributed process's 1 GiB and 2 GiB the driver holds, is unattributed.
  EXPECT_DOUBLE_EQ(*shares[0].values[kMemory], 3 * gib);
  EXPECT_EQ(shares[0].processes, 1u);
  EXPECT_DOUBLE_EQ(*ShareOf(shares, "a").values[kSm], 0.3);
  EXPECT_DOUBLE_EQ(*shares[0].values[kSm], 0.3);
  for (size_t q : {kMemory, kSm}) {
    double sum = 0;
    for (const HolderShare& s : shares) sum += *s.values[q];
    EXPECT_NEAR(sum, q == kMemory ? 10 * gib : 0.9, 1e-9);
  }
  // The device reports no encoder utilisation: no share of it.
  for (const HolderShare& s : shares) EXPECT_FALSE(s.values[kEncoder].has_value());
}

TEST(HolderUsageTest, ProcessesAddingUpToMoreThanTheDeviceAreScaledToIt) {
  auto view = Join(Sharers(), Gpu({Process(10, 1, 0.8), Process(20, 1, 0.4)}));
  const auto shares = SplitByHolder(view->devices[0], Attribution());
  EXPECT_DOUBLE_EQ(*ShareOf(shares, "a").values[kSm], 0.6);
  EXPECT_DOUBLE_EQ(*ShareOf(shares, "b").values[kSm], 0.3);
  EXPECT_DOUBLE_EQ(*shares[0].values[kSm], 0);
}

TEST(HolderUsageTest, AProcessOfAContainerThatHoldsNothingIsItsOwnHolder) {
  auto view = Join(Sharers(), Gpu({Process(30, 1ULL << 30, std::nullopt)}));
  const auto shares = SplitByHolder(view->devices[0], Attribution());
  EXPECT_EQ(ShareOf(shares, "monitor").holder, (ContainerName{"other", "monitor", "agent"}));
  EXPECT_DOUBLE_EQ(*ShareOf(shares, "monitor").values[kMemory], 1 << 30);
  // No utilisation sample for it: all of the device's 90% is unattributed.
  EXPECT_DOUBLE_EQ(*shares[0].values[kSm], 0.9);
}

TEST(HolderUsageTest, NoProcessesNoShares) {
  auto view = Join(Sharers(), Gpu({}));
  EXPECT_TRUE(SplitByHolder(view->devices[0], Attribution()).empty());
}

TEST(HolderUsageTest, RenderedWithTheRestOnlyWhileAttributionIsOn) {
  SnapshotStore<PodResourcesSnapshot> pods;
  SnapshotStore<DeviceSnapshot> devices;
  SnapshotStore<ProcessAttribution> attribution;
  MetricsRenderer renderer(&pods, &devices, {}, nullptr, &attribution);
  pods.Publish(Sharers());
  devices.Publish(Gpu({Process(10, 1ULL << 30, 0.5), Process(99, 1ULL << 30, 0.1)}));
  attribution.Publish(std::make_shared<ProcessAttribution>(Attribution()));
  std::string text = *renderer.Render();
  EXPECT_EQ(PromtoolCheck(text), "") << text;
  EXPECT_THAT(
      text,
      HasSubstr(
          R"(devscope_device_holder_memory_used_bytes{resource="nvidia.com/gpu",device="GPU-a",namespace="ml",pod="a",container="main"} 1073741824)"));
  EXPECT_THAT(
      text,
      HasSubstr(
          R"(devscope_device_holder_memory_used_bytes{resource="nvidia.com/gpu",device="GPU-a",namespace="",pod="",container=""} 9663676416)"));
  EXPECT_THAT(
      text,
      HasSubstr(
          R"(devscope_device_holder_utilization_ratio{resource="nvidia.com/gpu",device="GPU-a",namespace="ml",pod="a",container="main"} 0.5)"));
  EXPECT_THAT(
      text,
      HasSubstr(
          R"(devscope_device_holder_processes{resource="nvidia.com/gpu",device="GPU-a",namespace="ml",pod="idle",container="main"} 0)"));
  EXPECT_THAT(
      text,
      HasSubstr(
          R"(devscope_device_holder_processes{resource="nvidia.com/gpu",device="GPU-a",namespace="",pod="",container=""} 1)"));

  auto off = std::make_shared<ProcessAttribution>(Attribution());
  off->up = false;
  attribution.Publish(off);
  text = *renderer.Render();
  EXPECT_THAT(text, Not(HasSubstr("devscope_device_holder_")));
}

// The knobs that cut series (docs/scale.md) reach the split: holder labels off, no
// devscope_device_holder_* at all; a device metric a collector's allow-list drops takes its
// split with it.
TEST(HolderUsageTest, CardinalityKnobsApplyToTheSplit) {
  SnapshotStore<PodResourcesSnapshot> pods;
  SnapshotStore<DeviceSnapshot> devices;
  SnapshotStore<ProcessAttribution> attribution;
  pods.Publish(Sharers());
  auto gpu = Gpu({Process(10, 1ULL << 30, 0.5), Process(20, 1ULL << 30, 0.1)});
  devices.Publish(gpu);
  attribution.Publish(std::make_shared<ProcessAttribution>(Attribution()));
  MetricsRenderer without(&pods, &devices, {}, nullptr, &attribution,
                          MetricsOptions{.holder_labels = false});
  std::string text = *without.Render();
  EXPECT_EQ(PromtoolCheck(text), "") << text;
  EXPECT_THAT(text, HasSubstr("devscope_device_utilization_ratio{"));
  EXPECT_THAT(text, Not(HasSubstr("devscope_device_holder_")));

  // What --collector.nvml.metrics=devscope_device_memory_used_bytes leaves of the snapshot.
  auto listed = std::make_shared<DeviceSnapshot>(*gpu);
  std::vector<Sample>& samples = listed->collectors[0].devices[0].samples;
  std::erase_if(samples,
                [](const Sample& s) { return s.name == "devscope_device_utilization_ratio"; });
  devices.Publish(listed);
  MetricsRenderer with(&pods, &devices, {}, nullptr, &attribution);
  text = *with.Render();
  EXPECT_EQ(PromtoolCheck(text), "") << text;
  EXPECT_THAT(text, HasSubstr("devscope_device_holder_memory_used_bytes{"));
  EXPECT_THAT(text, Not(HasSubstr("devscope_device_holder_utilization_ratio")));
}

}  // namespace
}  // namespace devscope
