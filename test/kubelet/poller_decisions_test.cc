// The pod-resources poller's decisions (what each answer means, backoff, when
// GetAllocatableResources and Get are asked) against the fake client on a fake clock: each poll
// is stepped by advancing the clock to the poller's next deadline, so nothing waits on real time.
#include <atomic>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "common/clock.h"
#include "common/log.h"
#include "demo/standin_pod_resources.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kubelet/fake_pod_resources_client.h"
#include "kubelet/poller.h"
#include "prometheus/registry.h"
#include "spdlog/sinks/ostream_sink.h"
#include "test/support/metric_value.h"
#include "test/support/rich_pods.h"

namespace devscope {
namespace {

using ::testing::Optional;

constexpr PodResourcesMethod kList = PodResourcesMethod::kList;
constexpr PodResourcesMethod kAllocatable = PodResourcesMethod::kGetAllocatableResources;
constexpr PodResourcesMethod kGet = PodResourcesMethod::kGet;
constexpr absl::Duration kInterval = absl::Milliseconds(20);

class PollerDecisionsTest : public ::testing::Test {
 protected:
  PollerDecisionsTest() { client_->SetPods(RichPods()); }
  void TearDown() override { poller_.reset(); }

  // Starts polling every kInterval; returns once the first poll is done.
  void StartPoller(const std::function<void(PollerOptions&)>& tweak = nullptr) {
    PollerOptions options;
    options.socket_path = "fake";
    options.interval = kInterval;
    if (tweak) tweak(options);
    poller_ =
        std::make_unique<PodResourcesPoller>(options, *registry_, std::move(owned_client_), clock_);
    poller_->Start();
    NextWait();
  }
  // How long the poller waits, from now, before its next poll (once it waits for one).
  absl::Duration NextWait() {
    EXPECT_TRUE(clock_.AwaitWaiters(1));
    return clock_.NextDeadline() - clock_.Now();
  }
  // Runs the next poll: advances the clock to it and returns once it is done. Returns the wait.
  absl::Duration Step() {
    const absl::Duration wait = NextWait();
    clock_.Advance(wait);
    EXPECT_TRUE(clock_.AwaitWaiters(1));
    return wait;
  }
  // Steps until `done` holds; false after `max_steps`.
  bool StepUntil(const std::function<bool()>& done, int max_steps = 1000) {
    for (int i = 0; i < max_steps && !done(); ++i) Step();
    return done();
  }

  std::shared_ptr<const PodResourcesSnapshot> Current() { return poller_->store().Current(); }
  std::optional<double> Supported(const std::string& method) {
    return MetricValue(*registry_, "devscope_pod_resources_method_supported", {{"method", method}});
  }
  double Up() { return MetricValue(*registry_, "devscope_pod_resources_up").value_or(-1); }
  double Requests(const std::string& method, const std::string& code) {
    return MetricValue(*registry_, "devscope_pod_resources_requests_total",
                       {{"method", method}, {"code", code}})
        .value_or(0);
  }

  FakeClock clock_;
  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
  std::unique_ptr<FakePodResourcesClient> owned_client_ =
      std::make_unique<FakePodResourcesClient>();
  FakePodResourcesClient* const client_ = owned_client_.get();  // the poller owns it once started
  std::unique_ptr<PodResourcesPoller> poller_;
};

TEST_F(PollerDecisionsTest, AGetProbeAnsweredNotFoundMeansGetIsServed) {
  StartPoller();
  EXPECT_THAT(Supported("Get"), Optional(1.0));
  EXPECT_EQ(client_->Calls(kGet), 1);
}

TEST_F(PollerDecisionsTest, AllocatableFailedPreconditionIsNotServed) {
  client_->SetStatus(kAllocatable, absl::FailedPreconditionError("GetAllocatableResources off"));
  StartPoller();
  EXPECT_THAT(Supported("GetAllocatableResources"), Optional(0.0));
  ASSERT_NE(Current(), nullptr);
  EXPECT_FALSE(Current()->allocatable.has_value());
}

TEST_F(PollerDecisionsTest, ListUnimplementedIsReportedAndDown) {
  client_->SetStatus(kList, absl::UnimplementedError("unknown service"));
  StartPoller();
  EXPECT_THAT(Supported("List"), Optional(0.0));
  EXPECT_EQ(Up(), 0);
  EXPECT_EQ(Current(), nullptr);  // never an empty picture for a kubelet that did not answer
}

TEST_F(PollerDecisionsTest, AnUnreachableKubeletGetsAFreshConnection) {
  StartPoller();
  EXPECT_EQ(Up(), 1);
  EXPECT_EQ(client_->Reconnects(), 0);
  client_->SetStatus(kList, absl::UnavailableError("connection refused"));
  Step();
  EXPECT_EQ(client_->Reconnects(), 1);
  EXPECT_EQ(Up(), 0);
  EXPECT_THAT(Supported("List"), Optional(1.0));  // passing: says nothing about support
}

TEST_F(PollerDecisionsTest, StopShutsTheClientDown) {
  StartPoller();
  EXPECT_FALSE(client_->IsShutDown());
  poller_->Stop();  // while the poller waits on a clock that does not move
  EXPECT_TRUE(client_->IsShutDown());
}

TEST_F(PollerDecisionsTest, AllocatableDisabledStillPollsListAndIsReprobedRarely) {
  client_->SetStatus(kAllocatable,
                     absl::UnknownError("Pod Resources API GetAllocatableResources disabled"));
  StartPoller([](PollerOptions& o) { o.unsupported_reprobe = absl::Seconds(2); });
  const absl::Time probed = clock_.Now();
  EXPECT_THAT(Supported("GetAllocatableResources"), Optional(0.0));
  const int lists = client_->Calls(kList);
  for (int i = 0; i < 3; ++i) Step();
  EXPECT_EQ(client_->Calls(kList), lists + 3);
  EXPECT_FALSE(Current()->allocatable.has_value());
  EXPECT_EQ(Current()->pods.size(), 2u);
  EXPECT_EQ(Up(), 1);
  // Re-probed rarely (every 5 minutes by default; 2 s here), not on each poll.
  EXPECT_EQ(client_->Calls(kAllocatable), 1);
  ASSERT_TRUE(StepUntil([&] { return client_->Calls(kAllocatable) == 2; }));
  EXPECT_GE(clock_.Now() - probed, absl::Seconds(2));
  EXPECT_LT(clock_.Now() - probed, absl::Seconds(2) + 2 * kInterval);
}

TEST_F(PollerDecisionsTest, AllocatableAskedAgainForAnUnknownDeviceButNotOnEveryPoll) {
  v1::AllocatableResourcesResponse allocatable;
  *allocatable.add_devices() = MakeDevices("nvidia.com/gpu", {"GPU-aaa", "GPU-bbb"}, {0});
  client_->SetAllocatable(allocatable);
  // GPU-zzz is held but not allocatable (say, unhealthy): each List shows an unknown device.
  client_->SetPods(
      {MakePod("ml", "p", {MakeContainer("c", {MakeDevices("nvidia.com/gpu", {"GPU-zzz"})})})});
  StartPoller([](PollerOptions& o) { o.allocatable_min_spacing = absl::Milliseconds(300); });
  for (int i = 0; i < 60; ++i) Step();  // 1.2 s of polls
  const int calls = client_->Calls(kAllocatable);
  EXPECT_GT(client_->Calls(kList), 30);
  EXPECT_GE(calls, 2);
  EXPECT_LE(calls, 2 + 1200 / 300 + 1);  // at most once per spacing, not once per List

  // Once allocatable names the device, no more calls.
  *allocatable.add_devices() = MakeDevices("nvidia.com/gpu", {"GPU-zzz"});
  client_->SetAllocatable(allocatable);
  ASSERT_TRUE(StepUntil([&] { return Current()->allocatable->devices.size() == 2; }));
  const int settled = client_->Calls(kAllocatable);
  for (int i = 0; i < 35; ++i) Step();  // 0.7 s
  EXPECT_EQ(client_->Calls(kAllocatable), settled);
}

TEST_F(PollerDecisionsTest, AllocatableFollowsADeviceHealthChangeWithinTheDelays) {
  v1::AllocatableResourcesResponse allocatable;
  *allocatable.add_devices() = MakeDevices("example.com/widget", {"w0", "w1"}, {0});
  client_->SetAllocatable(allocatable);
  // Read by the poller's thread until TearDown stops the poller.
  auto last_change = std::make_shared<std::atomic<int64_t>>(0);
  StartPoller([&](PollerOptions& o) {
    o.last_device_change = [last_change] {
      const int64_t nanos = last_change->load();
      return nanos == 0 ? absl::InfinitePast() : absl::FromUnixNanos(nanos);
    };
    o.allocatable_after_device_change = {absl::Milliseconds(200), absl::Milliseconds(1500)};
  });
  ASSERT_TRUE(Current()->allocatable.has_value());
  const int first = client_->Calls(kAllocatable);
  for (int i = 0; i < 15; ++i) Step();             // 300 ms
  EXPECT_EQ(client_->Calls(kAllocatable), first);  // nothing changed

  // w1 turns unhealthy: the kubelet drops it from allocatable, and a collector saw the change.
  allocatable.clear_devices();
  *allocatable.add_devices() = MakeDevices("example.com/widget", {"w0"}, {0});
  client_->SetAllocatable(allocatable);
  const absl::Time changed = clock_.Now();
  last_change->store(absl::ToUnixNanos(changed));
  ASSERT_TRUE(StepUntil([&] { return Current()->allocatable->devices[0].device_ids.size() == 1; }));
  const absl::Duration took = clock_.Now() - changed;
  EXPECT_GE(took, absl::Milliseconds(200));  // after the delay that lets the plugin's update land
  EXPECT_LT(took, absl::Milliseconds(200) + 2 * kInterval);
  EXPECT_EQ(client_->Calls(kAllocatable), first + 1);
  // The second, later look (for a slower vendor plugin), then quiet.
  ASSERT_TRUE(StepUntil([&] { return client_->Calls(kAllocatable) == first + 2; }));
  EXPECT_GE(clock_.Now() - changed, absl::Milliseconds(1500));
  for (int i = 0; i < 25; ++i) Step();  // 500 ms
  EXPECT_EQ(client_->Calls(kAllocatable), first + 2);
}

TEST_F(PollerDecisionsTest, ThrottlingBacksOffWithoutACallStorm) {
  StartPoller();
  ASSERT_NE(Current(), nullptr);
  client_->SetStatus(kList, absl::ResourceExhaustedError("rejected by rate limit"));
  const absl::Time start = clock_.Now();
  std::vector<absl::Duration> waits;  // waits[0]: the interval before the first throttled poll
  while (clock_.Now() - start < absl::Minutes(2)) waits.push_back(Step());
  // Polling every 20 ms without backoff would make ~100 calls in 2 s.
  int in_two_seconds = 0;
  absl::Duration elapsed;
  for (absl::Duration wait : waits) {
    elapsed += wait;
    if (elapsed <= absl::Seconds(2)) ++in_two_seconds;
  }
  EXPECT_LT(in_two_seconds, 25);
  // Doubling from the interval, with +-20% jitter, up to the 30 s cap for throttling.
  absl::Duration expected = kInterval;
  for (size_t i = 1; i < waits.size(); ++i) {
    EXPECT_GE(waits[i], expected * 0.8) << i;
    EXPECT_LE(waits[i], expected * 1.2) << i;
    expected = std::min(expected * 2, absl::Seconds(30));
  }
  EXPECT_EQ(Requests("List", "RESOURCE_EXHAUSTED"), static_cast<double>(waits.size()));
  EXPECT_NE(Current(), nullptr);  // the last good picture stays

  client_->SetStatus(kList, absl::OkStatus());
  Step();
  EXPECT_EQ(Up(), 1);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Step(), kInterval);  // back to the normal interval
}

TEST_F(PollerDecisionsTest, AnAbsentKubeletIsLookedForAtLeastEveryFiveSeconds) {
  client_->SetStatus(kList, absl::UnavailableError("connection refused"));
  StartPoller();
  EXPECT_TRUE(poller_->first_poll_done());
  EXPECT_EQ(Up(), 0);
  EXPECT_EQ(Current(), nullptr);  // never an empty picture for a kubelet that did not answer
  absl::Duration longest;
  for (int i = 0; i < 20; ++i) longest = std::max(longest, Step());
  EXPECT_LE(longest, absl::Seconds(5) * 1.2);  // the failure backoff is capped at 5 s
  EXPECT_GE(longest, absl::Seconds(5) * 0.8);
  client_->SetStatus(kList, absl::OkStatus());
  EXPECT_LE(NextWait(), absl::Seconds(6));
  Step();
  ASSERT_NE(Current(), nullptr);
  EXPECT_EQ(Current()->pods[0].name, "trainer");
  EXPECT_EQ(Up(), 1);
}

TEST_F(PollerDecisionsTest, LogsOncePerStateChangeNotPerPoll) {
  std::ostringstream captured;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(captured);
  Log().sinks().push_back(sink);
  client_->SetStatus(kList, absl::UnavailableError("connection refused"));
  StartPoller();
  for (int i = 0; i < 30; ++i) Step();  // many failed polls, one state
  client_->SetStatus(kList, absl::OkStatus());
  Step();
  EXPECT_EQ(Up(), 1);
  poller_->Stop();
  Log().sinks().pop_back();
  const std::string text = captured.str();
  int downs = 0;
  for (size_t at = 0; (at = text.find("pod-resources down", at)) != std::string::npos; ++at) {
    ++downs;
  }
  EXPECT_EQ(downs, 1) << text;
  EXPECT_TRUE(absl::StrContains(text, "pod-resources up")) << text;
}

}  // namespace
}  // namespace devscope
