// The pod-resources poller in-process against the kubelet stand-in over a real unix socket. Its
// timing decisions (backoff, refresh, reprobe) are tested on a fake clock in
// poller_decisions_test.cc.
#include "kubelet/poller.h"

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "demo/standin_pod_resources.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "test/support/metric_value.h"
#include "test/support/rich_pods.h"
#include "test/support/temp_dir.h"
#include "test/support/wait_for.h"

namespace devscope {
namespace {

using ::testing::ElementsAre;
using ::testing::Optional;

class PollerTest : public ::testing::Test {
 protected:
  void TearDown() override {
    poller_.reset();
    standin_.reset();
  }

  void StartStandin() {
    auto standin = PodResourcesStandin::Start(socket_);
    ASSERT_TRUE(standin.ok()) << standin.status();
    standin_ = *std::move(standin);
  }

  void StartPoller(absl::Duration interval = absl::Milliseconds(50),
                   const std::function<void(PollerOptions&)>& tweak = nullptr) {
    PollerOptions options;
    options.socket_path = socket_;
    options.interval = interval;
    if (tweak) tweak(options);
    poller_ = std::make_unique<PodResourcesPoller>(options, *registry_);
    poller_->Start();
  }

  std::shared_ptr<const PodResourcesSnapshot> Current() { return poller_->store().Current(); }

  double Up() { return MetricValue(*registry_, "devscope_pod_resources_up").value_or(-1); }
  std::optional<double> Supported(const std::string& method) {
    return MetricValue(*registry_, "devscope_pod_resources_method_supported", {{"method", method}});
  }
  double Requests(const std::string& method, const std::string& code) {
    return MetricValue(*registry_, "devscope_pod_resources_requests_total",
                       {{"method", method}, {"code", code}})
        .value_or(0);
  }
  // Waits for a snapshot with a pod named `name` (or, with want=false, without it).
  bool WaitForPod(const std::string& name, bool want = true,
                  absl::Duration timeout = absl::Seconds(10)) {
    return WaitFor(
        [&] {
          auto snapshot = Current();
          if (snapshot == nullptr) return false;
          bool found = false;
          for (const PodResources& pod : snapshot->pods) found |= pod.name == name;
          return found == want;
        },
        timeout);
  }

  TempDir dir_;
  const std::string socket_ = dir_.Path("kubelet.sock");
  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
  std::unique_ptr<PodResourcesStandin> standin_;
  std::unique_ptr<PodResourcesPoller> poller_;
};

TEST_F(PollerTest, SnapshotCarriesEveryField) {
  StartStandin();
  std::vector<v1::PodResources> pods = RichPods();
  v1::PodResources pod_level = MakePod("batch", "pinned", {MakeContainer("only")});
  pod_level.add_cpu_ids(7);
  pod_level.add_cpu_ids(6);
  *pod_level.add_memory() = MakeMemory("memory", 4096, {1});
  pods.push_back(pod_level);
  standin_->SetPods(pods);
  v1::AllocatableResourcesResponse allocatable;
  *allocatable.add_devices() = MakeDevices("nvidia.com/gpu", {"GPU-aaa", "GPU-bbb"}, {0});
  allocatable.add_cpu_ids(2);
  *allocatable.add_memory() = MakeMemory("memory", 8ULL << 30, {0});
  standin_->SetAllocatable(allocatable);

  StartPoller();
  ASSERT_TRUE(WaitFor([&] { return Current() != nullptr; }));
  EXPECT_TRUE(poller_->first_poll_done());
  auto snapshot = Current();
  ASSERT_EQ(snapshot->pods.size(), 3u);
  EXPECT_NE(snapshot->list_time, absl::InfinitePast());

  // In namespace and name order (the kubelet's is a map's): batch/pinned, ml/trainer, web/shared.
  const PodResources& trainer = snapshot->pods[1];
  EXPECT_EQ(trainer.ns, "ml");
  EXPECT_EQ(trainer.name, "trainer");
  ASSERT_EQ(trainer.containers.size(), 2u);
  EXPECT_EQ(trainer.containers[0].name, "log-shipper");
  EXPECT_TRUE(trainer.containers[0].devices[0].numa_nodes.empty());
  const ContainerResources& main = trainer.containers[1];
  ASSERT_EQ(main.devices.size(), 2u);
  // A container's devices by resource name.
  EXPECT_EQ(main.devices[1].resource, "nvidia.com/gpu");
  EXPECT_THAT(main.devices[1].device_ids, ElementsAre("GPU-aaa", "GPU-bbb"));
  EXPECT_THAT(main.devices[1].numa_nodes, ElementsAre(0));
  EXPECT_EQ(main.devices[0].resource, "example.com/widget");
  EXPECT_TRUE(main.devices[0].numa_nodes.empty());
  EXPECT_THAT(main.exclusive_cpus, ElementsAre(2, 3, 4, 5, 10));
  ASSERT_EQ(main.memory.size(), 2u);
  EXPECT_EQ(main.memory[1].memory_type, "hugepages-1Gi");
  EXPECT_EQ(main.memory[1].size_bytes, 2ULL << 30);
  EXPECT_THAT(main.memory[1].numa_nodes, ElementsAre(0, 1));
  ASSERT_EQ(main.claim_devices.size(), 1u);
  const ClaimDevice& claim = main.claim_devices[0];
  EXPECT_EQ(claim.claim_namespace, "ml");
  EXPECT_EQ(claim.claim_name, "gpu-claim");
  EXPECT_EQ(claim.driver, "gpu.example.com");
  EXPECT_EQ(claim.pool, "node-a");
  EXPECT_EQ(claim.device, "gpu-3");
  EXPECT_THAT(claim.share_id, Optional(std::string("4fd2a9c0-share")));
  EXPECT_THAT(claim.cdi_devices, ElementsAre("example.com/gpu=gpu3"));

  const PodResources& shared = snapshot->pods[2];
  ASSERT_EQ(shared.containers.size(), 2u);
  EXPECT_EQ(shared.containers[0].devices[0].device_ids, shared.containers[1].devices[0].device_ids);

  const PodResources& pinned = snapshot->pods[0];
  EXPECT_THAT(pinned.pod_cpus, ElementsAre(7, 6));
  ASSERT_EQ(pinned.pod_memory.size(), 1u);
  EXPECT_EQ(pinned.pod_memory[0].size_bytes, 4096u);
  EXPECT_TRUE(pinned.containers[0].devices.empty());

  ASSERT_TRUE(snapshot->allocatable.has_value());
  EXPECT_THAT(snapshot->allocatable->cpus, ElementsAre(2));
  EXPECT_THAT(snapshot->allocatable->devices[0].device_ids, ElementsAre("GPU-aaa", "GPU-bbb"));
  EXPECT_EQ(snapshot->allocatable->memory[0].size_bytes, 8ULL << 30);

  EXPECT_EQ(Up(), 1);
  EXPECT_GT(
      MetricValue(*registry_, "devscope_pod_resources_last_success_timestamp_seconds").value_or(0),
      1e9);
  EXPECT_THAT(Supported("List"), Optional(1.0));
  EXPECT_THAT(Supported("GetAllocatableResources"), Optional(1.0));
  EXPECT_THAT(Supported("Get"), Optional(1.0));
  EXPECT_GE(Requests("List", "OK"), 1);
  EXPECT_GE(MetricValue(*registry_, "devscope_pod_resources_request_duration_seconds",
                        {{"method", "List"}})
                .value_or(0),
            1);
}

// The kubelet lists pods and devices in Go map order, new on every call: the same pods in another
// order are the same picture, and publish no new snapshot (which would cost every scrape a render).
TEST_F(PollerTest, TheSamePodsInAnotherOrderPublishNothingNew) {
  StartStandin();
  std::vector<v1::PodResources> pods = MakeFleet(20, 2, 3);
  *pods[0].mutable_containers(0)->add_devices() = MakeDevices("example.com/other", {"o-2", "o-1"});
  standin_->SetPods(pods);
  StartPoller();
  ASSERT_TRUE(WaitForPod("pod-19"));
  const uint64_t version = poller_->store().Version();
  const auto before = Current();
  // Reversed pods, each container's devices and device IDs reversed too.
  std::reverse(pods.begin(), pods.end());
  for (v1::PodResources& pod : pods) {
    for (v1::ContainerResources& c : *pod.mutable_containers()) {
      std::reverse(c.mutable_devices()->begin(), c.mutable_devices()->end());
      for (v1::ContainerDevices& d : *c.mutable_devices()) {
        std::reverse(d.mutable_device_ids()->begin(), d.mutable_device_ids()->end());
      }
    }
  }
  const double lists = Requests("List", "OK");
  standin_->SetPods(pods);
  ASSERT_TRUE(WaitFor([&] { return Requests("List", "OK") >= lists + 3; }));
  EXPECT_EQ(poller_->store().Version(), version);
  EXPECT_EQ(Current(), before);
  // A real change still publishes.
  pods.pop_back();
  standin_->SetPods(pods);
  ASSERT_TRUE(WaitFor([&] { return Current()->pods.size() == 19u; }));
  EXPECT_GT(poller_->store().Version(), version);
}

TEST_F(PollerTest, PodsAppearAndVanish) {
  StartStandin();
  StartPoller();
  ASSERT_TRUE(WaitFor([&] { return Current() != nullptr; }));
  EXPECT_TRUE(Current()->pods.empty());

  standin_->SetPods(RichPods());
  ASSERT_TRUE(WaitForPod("trainer", true, absl::Seconds(2)));
  standin_->SetPods({MakePod("web", "newcomer", {MakeContainer("c")})});
  ASSERT_TRUE(WaitForPod("trainer", false, absl::Seconds(2)));
  EXPECT_EQ(Current()->pods.size(), 1u);
  EXPECT_EQ(Current()->pods[0].name, "newcomer");
}

// About 20 MiB: 2000 pods x 4 containers x 16 devices with 150-character IDs.
std::vector<v1::PodResources> TwentyMiB() { return MakeFleet(2000, 4, 16, 150); }

TEST_F(PollerTest, TwentyMiBReplyFitsTheDefaultLimit) {
  StartStandin();
  std::vector<v1::PodResources> fleet = TwentyMiB();
  v1::ListPodResourcesResponse whole;
  for (const auto& pod : fleet) *whole.add_pod_resources() = pod;
  ASSERT_GT(whole.ByteSizeLong(), 20u << 20);
  standin_->SetPods(std::move(fleet));
  StartPoller(absl::Milliseconds(200));  // default 64 MiB limit
  ASSERT_TRUE(WaitFor([&] { return Current() != nullptr; }, absl::Seconds(20)));
  EXPECT_EQ(Current()->pods.size(), 2000u);
  EXPECT_EQ(Current()->pods[1999].containers[3].devices[15].device_ids[0].size(), 150u);
  EXPECT_EQ(Up(), 1);
}

TEST_F(PollerTest, ReplyOverTheLimitIsAClearFailureAndKeepsTheLastPicture) {
  StartStandin();
  standin_->SetPods(RichPods());
  // Polls every 2 s, so a List may take 4 s: on a loaded machine (or under ASan) the stand-in
  // can take over a second to build the 20 MiB reply, and a deadline is not what this tests.
  StartPoller(absl::Seconds(2), [](PollerOptions& o) { o.max_message_size = 4 << 20; });
  ASSERT_TRUE(WaitForPod("trainer"));
  EXPECT_EQ(Up(), 1);

  standin_->SetPods(TwentyMiB());
  ASSERT_TRUE(
      WaitFor([&] { return Requests("List", "RESOURCE_EXHAUSTED") >= 1; }, absl::Seconds(20)));
  EXPECT_EQ(Up(), 0);
  // The last good picture stays.
  ASSERT_NE(Current(), nullptr);
  EXPECT_EQ(Current()->pods.size(), 2u);
  EXPECT_EQ(Current()->pods[0].name, "trainer");
}

TEST_F(PollerTest, GetUnimplementedIsReportedUnsupported) {
  StartStandin();
  standin_->SetGetMode(MethodMode::kUnimplemented);
  StartPoller();
  ASSERT_TRUE(WaitFor([&] { return Supported("Get").has_value(); }));
  EXPECT_THAT(Supported("Get"), Optional(0.0));
  EXPECT_EQ(Requests("Get", "UNIMPLEMENTED"), 1);
  EXPECT_EQ(Up(), 1);
}

TEST_F(PollerTest, GetDisabledByGateIsReportedUnsupported) {
  StartStandin();
  standin_->SetGetMode(MethodMode::kDisabled);
  StartPoller();
  ASSERT_TRUE(WaitFor([&] { return Supported("Get").has_value(); }));
  EXPECT_THAT(Supported("Get"), Optional(0.0));
}

TEST_F(PollerTest, KubeletRestartIsRecoveredWithinAFewIntervals) {
  StartStandin();
  standin_->SetPods(RichPods());
  StartPoller(absl::Milliseconds(100));
  ASSERT_TRUE(WaitForPod("trainer"));

  ASSERT_TRUE(standin_->Restart().ok());
  const absl::Time restarted = absl::Now();
  standin_->SetPods({MakePod("web", "after-restart", {MakeContainer("c")})});
  ASSERT_TRUE(WaitForPod("after-restart", true, absl::Seconds(5)));
  EXPECT_LT(absl::Now() - restarted, absl::Seconds(1));
  EXPECT_EQ(Up(), 1);
}

// A kubelet that restarts with other methods served (an upgrade, a feature gate switched): the
// method metrics follow at the first poll after the restart, not at the 5-minute reprobe, both
// ways, and an allocatable picture of a method now off is dropped.
TEST_F(PollerTest, KubeletRestartWithOtherMethodsIsFollowedAtOnce) {
  StartStandin();
  standin_->SetPods(RichPods());
  standin_->SetGetMode(MethodMode::kUnimplemented);
  standin_->SetAllocatableMode(MethodMode::kDisabled);
  StartPoller(absl::Milliseconds(100));
  ASSERT_TRUE(WaitFor(
      [&] { return Supported("Get") == 0.0 && Supported("GetAllocatableResources") == 0.0; }));

  standin_->SetGetMode(MethodMode::kServe);
  standin_->SetAllocatableMode(MethodMode::kServe);
  ASSERT_TRUE(standin_->Restart().ok());
  absl::Time restarted = absl::Now();
  ASSERT_TRUE(WaitFor(
      [&] { return Supported("Get") == 1.0 && Supported("GetAllocatableResources") == 1.0; }));
  EXPECT_LT(absl::Now() - restarted, absl::Seconds(1));
  ASSERT_TRUE(WaitFor([&] { return Current()->allocatable.has_value(); }));

  standin_->SetGetMode(MethodMode::kDisabled);
  standin_->SetAllocatableMode(MethodMode::kUnimplemented);
  ASSERT_TRUE(standin_->Restart().ok());
  restarted = absl::Now();
  ASSERT_TRUE(WaitFor(
      [&] { return Supported("Get") == 0.0 && Supported("GetAllocatableResources") == 0.0; }));
  EXPECT_LT(absl::Now() - restarted, absl::Seconds(1));
  ASSERT_TRUE(WaitFor([&] { return !Current()->allocatable.has_value(); }));
  EXPECT_EQ(Up(), 1);
}

// Without a restart nothing is asked again before the reprobe interval.
TEST_F(PollerTest, AnUnchangedKubeletIsNotReprobed) {
  StartStandin();
  standin_->SetGetMode(MethodMode::kUnimplemented);
  StartPoller(absl::Milliseconds(20));
  ASSERT_TRUE(WaitFor([&] { return Supported("Get") == 0.0; }));
  const int lists = standin_->CallCount("List");
  ASSERT_TRUE(WaitFor([&] { return standin_->CallCount("List") >= lists + 20; }));
  EXPECT_EQ(standin_->CallCount("Get"), 1);
  EXPECT_EQ(standin_->CallCount("GetAllocatableResources"), 1);
}

TEST_F(PollerTest, KubeletGoneKeepsTheLastPictureAndComesBack) {
  StartStandin();
  standin_->SetPods(RichPods());
  StartPoller(absl::Milliseconds(50));
  ASSERT_TRUE(WaitForPod("trainer"));
  standin_->Stop();
  ASSERT_TRUE(WaitFor([&] { return Up() == 0; }));
  EXPECT_GE(Requests("List", "UNAVAILABLE"), 1);
  EXPECT_EQ(Current()->pods.size(), 2u);
  ASSERT_TRUE(standin_->Restart().ok());
  standin_->SetPods({});
  ASSERT_TRUE(WaitForPod("trainer", false));
  EXPECT_EQ(Up(), 1);
}

TEST_F(PollerTest, GarbageReplyMarksDownAndKeepsThePicture) {
  StartStandin();
  standin_->SetPods(RichPods());
  StartPoller();
  ASSERT_TRUE(WaitForPod("trainer"));
  standin_->SetGarbage(true);
  ASSERT_TRUE(WaitFor([&] { return Up() == 0; }));
  EXPECT_EQ(Current()->pods.size(), 2u);
  // A garbled reply is INTERNAL, not a kubelet that lacks List.
  EXPECT_GE(Requests("List", "INTERNAL"), 1);
  EXPECT_EQ(Requests("List", "UNIMPLEMENTED"), 0);
  EXPECT_THAT(Supported("List"), Optional(1.0));
  standin_->SetGarbage(false);
  ASSERT_TRUE(WaitFor([&] { return Up() == 1; }));
}

TEST_F(PollerTest, SlowKubeletHitsTheDeadlineAndStopDoesNotWait) {
  StartStandin();
  standin_->SetPods(RichPods());
  StartPoller(absl::Milliseconds(100));  // deadline: 1 s
  ASSERT_TRUE(WaitForPod("trainer"));
  standin_->SetListDelay(absl::Seconds(3));
  ASSERT_TRUE(WaitFor([&] { return Up() == 0; }));
  EXPECT_GE(Requests("List", "DEADLINE_EXCEEDED"), 1);
  EXPECT_EQ(Current()->pods.size(), 2u);
  standin_->SetListDelay(absl::ZeroDuration());
  ASSERT_TRUE(WaitFor([&] { return Up() == 1; }));

  // Stop cancels a call in flight rather than waiting out its deadline.
  standin_->SetListDelay(absl::Seconds(5));
  absl::SleepFor(absl::Milliseconds(300));
  const absl::Time stopping = absl::Now();
  poller_->Stop();
  EXPECT_LT(absl::Now() - stopping, absl::Milliseconds(500));
  poller_->Stop();  // idempotent
}

TEST(PollerDeadlineTest, ClampedBetweenOneAndTenSeconds) {
  EXPECT_EQ(PodResourcesCallDeadline(absl::Milliseconds(100)), absl::Seconds(1));
  EXPECT_EQ(PodResourcesCallDeadline(absl::Seconds(2)), absl::Seconds(4));
  EXPECT_EQ(PodResourcesCallDeadline(absl::Minutes(1)), absl::Seconds(10));
}

TEST_F(PollerTest, AnUnchangedReplyKeepsTheSameSnapshot) {
  StartStandin();
  standin_->SetPods(RichPods());
  StartPoller();
  ASSERT_TRUE(WaitFor([&] { return Current() != nullptr && Current()->pods.size() == 2; }));
  const auto first = Current();
  const int lists = standin_->CallCount("List");
  ASSERT_TRUE(WaitFor([&] { return standin_->CallCount("List") >= lists + 3; }));
  // Same reply, same allocatable: the renderer's cache stays valid.
  EXPECT_EQ(Current(), first);
  auto pods = RichPods();
  pods.pop_back();
  standin_->SetPods(pods);
  ASSERT_TRUE(WaitFor([&] { return Current()->pods.size() == 1; }));
  EXPECT_NE(Current(), first);
}

}  // namespace
}  // namespace devscope
