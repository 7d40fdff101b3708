// The pod-resources poller in-process: against the kubelet stand-in over a real unix socket, and
// (for its decisions alone) against the fake client.
#include "kubelet/poller.h"

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "demo/standin_pod_resources.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kubelet/fake_pod_resources_client.h"
#include "prometheus/registry.h"
#include "spdlog/sinks/ostream_sink.h"
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

  const PodResources& trainer = snapshot->pods[0];
  EXPECT_EQ(trainer.ns, "ml");
  EXPECT_EQ(trainer.name, "trainer");
  ASSERT_EQ(trainer.containers.size(), 2u);
  EXPECT_EQ(trainer.containers[0].name, "log-shipper");
  EXPECT_TRUE(trainer.containers[0].devices[0].numa_nodes.empty());
  const ContainerResources& main = trainer.containers[1];
  ASSERT_EQ(main.devices.size(), 2u);
  EXPECT_EQ(main.devices[0].resource, "nvidia.com/gpu");
  EXPECT_THAT(main.devices[0].device_ids, ElementsAre("GPU-aaa", "GPU-bbb"));
  EXPECT_THAT(main.devices[0].numa_nodes, ElementsAre(0));
  EXPECT_EQ(main.devices[1].resource, "example.com/widget");
  EXPECT_TRUE(main.devices[1].numa_nodes.empty());
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

  const PodResources& shared = snapshot->pods[1];
  ASSERT_EQ(shared.containers.size(), 2u);
  EXPECT_EQ(shared.containers[0].devices[0].device_ids, shared.containers[1].devices[0].device_ids);

  const PodResources& pinned = snapshot->pods[2];
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
  StartPoller(absl::Milliseconds(50), [](PollerOptions& o) { o.max_message_size = 4 << 20; });
  ASSERT_TRUE(WaitForPod("trainer"));
  EXPECT_EQ(Up(), 1);

  standin_->SetPods(TwentyMiB());
  ASSERT_TRUE(WaitFor([&] { return Up() == 0; }, absl::Seconds(20)));
  EXPECT_GE(Requests("List", "RESOURCE_EXHAUSTED"), 1);
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

TEST_F(PollerTest, AllocatableDisabledStillPollsList) {
  StartStandin();
  standin_->SetAllocatableMode(MethodMode::kDisabled);
  standin_->SetPods(RichPods());
  StartPoller();
  ASSERT_TRUE(WaitFor([&] { return Supported("GetAllocatableResources").has_value(); }));
  EXPECT_THAT(Supported("GetAllocatableResources"), Optional(0.0));
  const int lists = standin_->CallCount("List");
  ASSERT_TRUE(WaitFor([&] { return standin_->CallCount("List") >= lists + 3; }));
  EXPECT_FALSE(Current()->allocatable.has_value());
  EXPECT_EQ(Current()->pods.size(), 2u);
  EXPECT_EQ(Up(), 1);
  // Re-probed rarely (every 5 minutes by default), not on each poll.
  EXPECT_EQ(standin_->CallCount("GetAllocatableResources"), 1);
}

TEST_F(PollerTest, AllocatableAskedAgainForAnUnknownDeviceButNotOnEveryPoll) {
  StartStandin();
  v1::AllocatableResourcesResponse allocatable;
  *allocatable.add_devices() = MakeDevices("nvidia.com/gpu", {"GPU-aaa", "GPU-bbb"}, {0});
  standin_->SetAllocatable(allocatable);
  // GPU-zzz is held but not allocatable (say, unhealthy): each List shows an unknown device.
  standin_->SetPods(
      {MakePod("ml", "p", {MakeContainer("c", {MakeDevices("nvidia.com/gpu", {"GPU-zzz"})})})});
  StartPoller(absl::Milliseconds(20),
              [](PollerOptions& o) { o.allocatable_min_spacing = absl::Milliseconds(300); });
  ASSERT_TRUE(WaitFor([&] { return standin_->CallCount("GetAllocatableResources") >= 2; }));
  absl::SleepFor(absl::Milliseconds(1200));
  const int calls = standin_->CallCount("GetAllocatableResources");
  const int lists = standin_->CallCount("List");
  EXPECT_GT(lists, 30);
  EXPECT_LE(calls, 2 + 1200 / 300 + 1);  // at most once per spacing, not once per List

  // Once allocatable names the device, no more calls.
  *allocatable.add_devices() = MakeDevices("nvidia.com/gpu", {"GPU-zzz"});
  standin_->SetAllocatable(allocatable);
  ASSERT_TRUE(WaitFor([&] {
    auto s = Current();
    return s->allocatable.has_value() && s->allocatable->devices.size() == 2;
  }));
  const int settled = standin_->CallCount("GetAllocatableResources");
  absl::SleepFor(absl::Milliseconds(700));
  EXPECT_EQ(standin_->CallCount("GetAllocatableResources"), settled);
}

TEST_F(PollerTest, AllocatableFollowsADeviceHealthChangeWithinTheDelays) {
  StartStandin();
  v1::AllocatableResourcesResponse allocatable;
  *allocatable.add_devices() = MakeDevices("example.com/widget", {"w0", "w1"}, {0});
  standin_->SetAllocatable(allocatable);
  // Shared: the poller's thread reads it until TearDown stops the poller.
  auto last_change = std::make_shared<std::atomic<int64_t>>(0);
  StartPoller(absl::Milliseconds(20), [&](PollerOptions& o) {
    o.last_device_change = [last_change] {
      const int64_t nanos = last_change->load();
      return nanos == 0 ? absl::InfinitePast() : absl::FromUnixNanos(nanos);
    };
    o.allocatable_after_device_change = {absl::Milliseconds(200), absl::Milliseconds(1500)};
  });
  ASSERT_TRUE(WaitFor([&] { return Current() != nullptr && Current()->allocatable.has_value(); }));
  const int first = standin_->CallCount("GetAllocatableResources");
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(standin_->CallCount("GetAllocatableResources"), first);  // nothing changed

  // w1 turns unhealthy: the kubelet drops it from allocatable, and a collector saw the change.
  allocatable.clear_devices();
  *allocatable.add_devices() = MakeDevices("example.com/widget", {"w0"}, {0});
  standin_->SetAllocatable(allocatable);
  const absl::Time changed = absl::Now();
  last_change->store(absl::ToUnixNanos(changed));
  ASSERT_TRUE(WaitFor([&] { return Current()->allocatable->devices[0].device_ids.size() == 1; }));
  const absl::Duration took = absl::Now() - changed;
  EXPECT_GE(took, absl::Milliseconds(150));  // after the delay that lets the plugin's update land
  EXPECT_LT(took, absl::Seconds(1));
  EXPECT_EQ(standin_->CallCount("GetAllocatableResources"), first + 1);
  // The second, later look (for a slower vendor plugin), then quiet.
  ASSERT_TRUE(WaitFor([&] { return standin_->CallCount("GetAllocatableResources") == first + 2; }));
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_EQ(standin_->CallCount("GetAllocatableResources"), first + 2);
}

TEST_F(PollerTest, ThrottlingBacksOffWithoutACallStorm) {
  StartStandin();
  standin_->SetPods(RichPods());
  standin_->SetRateLimit(1, 1);
  StartPoller(absl::Milliseconds(20));
  absl::SleepFor(absl::Seconds(2));
  // Polling every 20 ms without backoff would make ~100 calls.
  const int calls = standin_->CallCount("List") + standin_->CallCount("GetAllocatableResources") +
                    standin_->CallCount("Get");
  EXPECT_LT(calls, 25);
  EXPECT_GE(Requests("List", "RESOURCE_EXHAUSTED"), 1);
  EXPECT_NE(Current(), nullptr);

  standin_->SetRateLimit(100, 10);
  ASSERT_TRUE(WaitFor([&] { return Up() == 1; }));
  const int before = standin_->CallCount("List");
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_GT(standin_->CallCount("List") - before, 10);  // back to the normal interval
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

TEST_F(PollerTest, KubeletAbsentAtStartThenAppearing) {
  StartPoller(absl::Milliseconds(50));
  ASSERT_TRUE(WaitFor([&] { return poller_->first_poll_done(); }));
  EXPECT_EQ(Up(), 0);
  EXPECT_EQ(Current(), nullptr);  // never an empty picture for a kubelet that did not answer
  absl::SleepFor(absl::Milliseconds(300));
  StartStandin();
  standin_->SetPods(RichPods());
  // The failure backoff is capped at 5 s.
  ASSERT_TRUE(WaitForPod("trainer", true, absl::Seconds(8)));
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

TEST_F(PollerTest, LogsOncePerStateChangeNotPerPoll) {
  std::ostringstream captured;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(captured);
  Log().sinks().push_back(sink);
  StartPoller(absl::Milliseconds(20));
  absl::SleepFor(absl::Milliseconds(600));  // many failed polls, one state
  StartStandin();
  ASSERT_TRUE(WaitFor([&] { return Up() == 1; }));
  poller_->Stop();
  Log().sinks().pop_back();
  const std::string text = captured.str();
  int downs = 0;
  for (size_t at = 0; (at = text.find("pod-resources down", at)) != std::string::npos; ++at)
    ++downs;
  EXPECT_EQ(downs, 1) << text;
  EXPECT_TRUE(absl::StrContains(text, "pod-resources up")) << text;
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

// The poller's decisions against the fake client: what each answer means, without a socket.
class PollerWithFakeClientTest : public ::testing::Test {
 protected:
  PollerWithFakeClientTest() { client_->SetPods(RichPods()); }
  void TearDown() override { poller_.reset(); }

  void StartPoller() {
    PollerOptions options;
    options.socket_path = "fake";
    options.interval = absl::Milliseconds(20);
    poller_ = std::make_unique<PodResourcesPoller>(options, *registry_, std::move(owned_client_));
    poller_->Start();
  }
  std::optional<double> Supported(const std::string& method) {
    return MetricValue(*registry_, "devscope_pod_resources_method_supported", {{"method", method}});
  }
  double Up() { return MetricValue(*registry_, "devscope_pod_resources_up").value_or(-1); }

  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
  std::unique_ptr<FakePodResourcesClient> owned_client_ =
      std::make_unique<FakePodResourcesClient>();
  FakePodResourcesClient* const client_ = owned_client_.get();  // the poller owns it once started
  std::unique_ptr<PodResourcesPoller> poller_;
};

TEST_F(PollerWithFakeClientTest, AGetProbeAnsweredNotFoundMeansGetIsServed) {
  StartPoller();
  ASSERT_TRUE(WaitFor([&] { return Supported("Get").has_value(); }));
  EXPECT_THAT(Supported("Get"), Optional(1.0));
  EXPECT_EQ(client_->Calls(PodResourcesMethod::kGet), 1);
}

TEST_F(PollerWithFakeClientTest, AllocatableFailedPreconditionIsNotServed) {
  client_->SetStatus(PodResourcesMethod::kGetAllocatableResources,
                     absl::FailedPreconditionError("GetAllocatableResources disabled"));
  StartPoller();
  ASSERT_TRUE(WaitFor([&] { return Supported("GetAllocatableResources").has_value(); }));
  EXPECT_THAT(Supported("GetAllocatableResources"), Optional(0.0));
  ASSERT_TRUE(WaitFor([&] { return poller_->store().Current() != nullptr; }));
  EXPECT_FALSE(poller_->store().Current()->allocatable.has_value());
}

TEST_F(PollerWithFakeClientTest, ListUnimplementedIsReportedAndDown) {
  client_->SetStatus(PodResourcesMethod::kList, absl::UnimplementedError("unknown service"));
  StartPoller();
  ASSERT_TRUE(WaitFor([&] { return Supported("List").has_value(); }));
  EXPECT_THAT(Supported("List"), Optional(0.0));
  EXPECT_EQ(Up(), 0);
  EXPECT_EQ(poller_->store().Current(), nullptr);
}

TEST_F(PollerWithFakeClientTest, AnUnreachableKubeletGetsAFreshConnection) {
  StartPoller();
  ASSERT_TRUE(WaitFor([&] { return Up() == 1; }));
  EXPECT_EQ(client_->Reconnects(), 0);
  client_->SetStatus(PodResourcesMethod::kList, absl::UnavailableError("connection refused"));
  ASSERT_TRUE(WaitFor([&] { return client_->Reconnects() >= 1; }));
  EXPECT_EQ(Up(), 0);
  EXPECT_THAT(Supported("List"), Optional(1.0));  // passing: says nothing about support
}

TEST_F(PollerWithFakeClientTest, StopShutsTheClientDown) {
  StartPoller();
  ASSERT_TRUE(WaitFor([&] { return poller_->first_poll_done(); }));
  EXPECT_FALSE(client_->IsShutDown());
  poller_->Stop();
  EXPECT_TRUE(client_->IsShutDown());
}

}  // namespace
}  // namespace devscope
