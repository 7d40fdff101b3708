#include "collectors/runner.h"

#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "collectors/devicedir.h"
#include "common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/support/temp_dir.h"
#include "test/support/wait_for.h"

namespace devscope {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;

DeviceReport MakeDevice(const std::string& id) {
  DeviceReport report;
  report.info.id = id;
  report.info.resource = "example.com/thing";
  return report;
}

// A collector whose pass is a test-provided function.
class FuncCollector : public Collector {
 public:
  using Fn = std::function<absl::StatusOr<std::vector<DeviceReport>>()>;
  FuncCollector(std::string name, Fn fn) : name_(std::move(name)), fn_(std::move(fn)) {}
  absl::string_view name() const override { return name_; }
  absl::StatusOr<std::vector<DeviceReport>> Collect() override {
    ++passes;
    return fn_();
  }
  std::atomic<int> passes{0};

 private:
  std::string name_;
  Fn fn_;
};

const CollectorReport* FindCollector(const DeviceSnapshot& snapshot, const std::string& name) {
  for (const CollectorReport& r : snapshot.collectors) {
    if (r.collector == name) return &r;
  }
  return nullptr;
}

// Polls the store until `pred` holds for the current snapshot or `timeout` passes.
bool WaitForSnapshot(const SnapshotStore<DeviceSnapshot>& store,
                     const std::function<bool(const DeviceSnapshot&)>& pred,
                     absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  uint64_t seen = 0;
  while (true) {
    auto current = store.Current();
    if (current != nullptr && pred(*current)) return true;
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    seen = store.WaitForNewer(seen, std::min(left, absl::Milliseconds(50)));
  }
}

TEST(CollectorRunnerTest, PublishesAnInitialSnapshotAndFirstPass) {
  std::vector<std::unique_ptr<Collector>> collectors;
  collectors.push_back(std::make_unique<FuncCollector>(
      "a", [] { return std::vector<DeviceReport>{MakeDevice("d0")}; }));
  CollectorRunner runner(std::move(collectors), RunnerOptions{});
  auto first = runner.store().Current();
  ASSERT_NE(first, nullptr);
  ASSERT_THAT(first->collectors, SizeIs(1));
  EXPECT_FALSE(first->collectors[0].up);
  EXPECT_FALSE(runner.first_pass_done());

  runner.CollectOnceForTest();
  EXPECT_TRUE(runner.first_pass_done());
  auto after = runner.store().Current();
  const CollectorReport* a = FindCollector(*after, "a");
  ASSERT_NE(a, nullptr);
  EXPECT_TRUE(a->up);
  EXPECT_EQ(a->error, "");
  EXPECT_THAT(a->devices, SizeIs(1));
  EXPECT_NE(a->time, absl::InfinitePast());
}

TEST(CollectorRunnerTest, AThrowingCollectorIsAFailedPassNotACrash) {
  std::vector<std::unique_ptr<Collector>> collectors;
  collectors.push_back(std::make_unique<FuncCollector>(
      "thrower",
      []() -> absl::StatusOr<std::vector<DeviceReport>> { throw std::runtime_error("boom"); }));
  collectors.push_back(std::make_unique<FuncCollector>(
      "fine", [] { return std::vector<DeviceReport>{MakeDevice("d0")}; }));
  CollectorRunner runner(std::move(collectors), RunnerOptions{});
  runner.CollectOnceForTest();
  auto snapshot = runner.store().Current();
  const CollectorReport* thrower = FindCollector(*snapshot, "thrower");
  ASSERT_NE(thrower, nullptr);
  EXPECT_FALSE(thrower->up);
  EXPECT_THAT(thrower->error, HasSubstr("boom"));
  EXPECT_TRUE(FindCollector(*snapshot, "fine")->up);
}

TEST(CollectorRunnerTest, AppliesTheHealthModelBeforePublishing) {
  HealthOptions health;
  health.max_temperature_celsius = 90;
  std::vector<std::unique_ptr<Collector>> collectors;
  collectors.push_back(std::make_unique<FuncCollector>("hot", [] {
    DeviceReport hot = MakeDevice("hot0");
    hot.samples.push_back(
        {"devscope_device_temperature_celsius", Sample::Kind::kGauge, {}, 95, ""});
    DeviceReport cool = MakeDevice("cool0");
    cool.samples.push_back(
        {"devscope_device_temperature_celsius", Sample::Kind::kGauge, {}, 40, ""});
    return std::vector<DeviceReport>{hot, cool};
  }));
  CollectorRunner runner(std::move(collectors), RunnerOptions{}, HealthModel(health, NodeRoots{}));
  runner.CollectOnceForTest();
  const CollectorReport* hot = FindCollector(*runner.store().Current(), "hot");
  ASSERT_THAT(hot->devices, SizeIs(2));
  EXPECT_FALSE(hot->devices[0].health.healthy);
  EXPECT_THAT(hot->devices[0].health.reason, HasSubstr("temperature"));
  EXPECT_TRUE(hot->devices[1].health.healthy);
}

TEST(CollectorRunnerTest, FailedPassKeepsLastGoodDevicesUntilStale) {
  std::atomic<bool> fail{false};
  RunnerOptions config;
  config.interval = absl::Milliseconds(40);
  config.stale_after = absl::Milliseconds(400);
  std::vector<std::unique_ptr<Collector>> collectors;
  auto flaky = std::make_unique<FuncCollector>(
      "flaky", [&fail]() -> absl::StatusOr<std::vector<DeviceReport>> {
        if (fail) return absl::UnavailableError("device gone");
        return std::vector<DeviceReport>{MakeDevice("d0")};
      });
  FuncCollector* flaky_ptr = flaky.get();
  collectors.push_back(std::move(flaky));
  FakeClock clock;
  CollectorRunner runner(std::move(collectors), config, HealthModel(), clock);
  runner.Start();
  ASSERT_TRUE(WaitForSnapshot(
      runner.store(),
      [](const DeviceSnapshot& s) {
        return s.collectors[0].up && !s.collectors[0].devices.empty();
      },
      absl::Seconds(5)));
  const absl::Time failed_at = clock.Now();  // the last good pass's time
  fail = true;
  // Down at the next pass, last good devices kept...
  clock.Advance(config.interval);
  ASSERT_TRUE(WaitForSnapshot(
      runner.store(), [](const DeviceSnapshot& s) { return !s.collectors[0].up; },
      absl::Seconds(5)));
  auto down = runner.store().Current();
  EXPECT_THAT(down->collectors[0].error, HasSubstr("device gone"));
  EXPECT_THAT(down->collectors[0].devices, SizeIs(1));
  // ...while they are not older than stale_after, however many passes fail...
  const int passes = flaky_ptr->passes;
  clock.Advance(absl::Milliseconds(360));  // 400 ms after the last good pass
  ASSERT_TRUE(WaitFor([&] { return flaky_ptr->passes > passes; }));
  EXPECT_THAT(runner.store().Current()->collectors[0].devices, SizeIs(1));
  // ...then dropped once older.
  clock.Advance(absl::Milliseconds(40));
  ASSERT_TRUE(WaitForSnapshot(
      runner.store(), [](const DeviceSnapshot& s) { return s.collectors[0].devices.empty(); },
      absl::Seconds(5)));
  EXPECT_GE(clock.Now() - failed_at, absl::Milliseconds(350));
  runner.Stop();
}

TEST(CollectorRunnerTest, StuckCollectorIsMarkedDownWhileOthersKeepPublishing) {
  absl::Notification release;
  RunnerOptions config;
  config.interval = absl::Milliseconds(100);
  std::vector<std::unique_ptr<Collector>> collectors;
  auto stuck = std::make_unique<FuncCollector>("stuck", [&release] {
    release.WaitForNotificationWithTimeout(absl::Seconds(20));
    return std::vector<DeviceReport>{};
  });
  FuncCollector* stuck_ptr = stuck.get();
  collectors.push_back(std::move(stuck));
  auto steady = std::make_unique<FuncCollector>(
      "steady", [] { return std::vector<DeviceReport>{MakeDevice("d0")}; });
  FuncCollector* steady_ptr = steady.get();
  collectors.push_back(std::move(steady));
  FakeClock clock;
  CollectorRunner runner(std::move(collectors), config, HealthModel(), clock);
  runner.Start();
  ASSERT_TRUE(WaitFor([&] { return stuck_ptr->passes == 1 && steady_ptr->passes == 1; }));
  EXPECT_FALSE(runner.first_pass_done());  // the stuck pass is not over, nor overdue yet
  clock.Advance(absl::Milliseconds(101));  // past the deadline (the interval)
  ASSERT_TRUE(WaitForSnapshot(
      runner.store(),
      [](const DeviceSnapshot& s) {
        const CollectorReport* stuck = FindCollector(s, "stuck");
        return !stuck->up && stuck->error.find("deadline exceeded") != std::string::npos;
      },
      absl::Seconds(5)));
  EXPECT_TRUE(runner.first_pass_done());
  // The steady collector goes on passing and publishing while the other is stuck.
  const int passes = steady_ptr->passes;
  const absl::Time time_before = FindCollector(*runner.store().Current(), "steady")->time;
  ASSERT_TRUE(WaitFor([&] {
    clock.Advance(config.interval);  // from here the clock runs
    const auto snapshot = runner.store().Current();  // held: `r` points into it
    const CollectorReport* r = FindCollector(*snapshot, "steady");
    return r->up && r->time > time_before && steady_ptr->passes >= passes + 2;
  }));
  EXPECT_FALSE(FindCollector(*runner.store().Current(), "stuck")->up);
  release.Notify();
  runner.Stop();
}

TEST(CollectorRunnerTest, HealthFileChangeReachesTheSnapshotWithinASecond) {
  TempDir dir;
  const std::string health = absl::StrCat(dir.path(), "/w0/health");
  WriteFile(absl::StrCat(dir.path(), "/w0/resource"), "example.com/widget");
  WriteFile(absl::StrCat(dir.path(), "/w1/resource"), "example.com/widget");
  WriteFile(health, "Healthy");
  RunnerOptions config;
  config.interval = absl::Seconds(60);  // only the watch can make it that fast
  std::vector<std::unique_ptr<Collector>> collectors;
  collectors.push_back(std::make_unique<DevicedirCollector>(dir.path(), geteuid()));
  CollectorRunner runner(std::move(collectors), config);
  runner.Start();
  auto w0_healthy = [](const DeviceSnapshot& s) -> std::optional<bool> {
    for (const DeviceReport& d : s.collectors[0].devices) {
      if (d.info.id == "w0") return d.health.healthy;
    }
    return std::nullopt;
  };
  ASSERT_TRUE(WaitForSnapshot(
      runner.store(), [&](const DeviceSnapshot& s) { return w0_healthy(s) == true; },
      absl::Seconds(5)));

  // Rename into place, as careful writers do.
  absl::Time start = absl::Now();
  WriteFile(absl::StrCat(dir.path(), "/w0/.health.new"), "Unhealthy\n");
  std::filesystem::rename(absl::StrCat(dir.path(), "/w0/.health.new"), health);
  ASSERT_TRUE(WaitForSnapshot(
      runner.store(), [&](const DeviceSnapshot& s) { return w0_healthy(s) == false; },
      absl::Seconds(1)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  auto snapshot = runner.store().Current();
  EXPECT_THAT(snapshot->collectors[0].devices[0].health.reason, HasSubstr("Unhealthy"));

  // A plain rewrite in place.
  start = absl::Now();
  WriteFile(health, "Healthy\n");
  ASSERT_TRUE(WaitForSnapshot(
      runner.store(), [&](const DeviceSnapshot& s) { return w0_healthy(s) == true; },
      absl::Seconds(1)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));

  // A new device directory shows up just as fast, and a removed one goes.
  start = absl::Now();
  WriteFile(absl::StrCat(dir.path(), "/w2/resource"), "example.com/widget");
  ASSERT_TRUE(WaitForSnapshot(
      runner.store(), [](const DeviceSnapshot& s) { return s.collectors[0].devices.size() == 3; },
      absl::Seconds(1)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  std::filesystem::remove_all(absl::StrCat(dir.path(), "/w1"));
  ASSERT_TRUE(WaitForSnapshot(
      runner.store(), [](const DeviceSnapshot& s) { return s.collectors[0].devices.size() == 2; },
      absl::Seconds(1)));
  runner.Stop();
}

// A pass that does not end within the stop grace: Stop() joins every other thread, reports the
// stuck one as left running (false) within about the grace, and the runner stays usable by that
// thread; once it returns, a Stop() that waits joins it.
TEST(CollectorRunnerTest, StopIsBoundedWhenAPassIsStuck) {
  absl::Notification entered, release;
  RunnerOptions config;
  config.interval = absl::Milliseconds(100);
  std::vector<std::unique_ptr<Collector>> collectors;
  collectors.push_back(std::make_unique<FuncCollector>("stuck", [&] {
    if (!entered.HasBeenNotified()) entered.Notify();
    release.WaitForNotification();
    return std::vector<DeviceReport>{};
  }));
  collectors.push_back(
      std::make_unique<FuncCollector>("steady", [] { return std::vector<DeviceReport>{}; }));
  CollectorRunner runner(std::move(collectors), config);
  runner.Start();
  ASSERT_TRUE(entered.WaitForNotificationWithTimeout(absl::Seconds(5)));
  const absl::Time start = absl::Now();
  EXPECT_FALSE(runner.Stop(absl::Milliseconds(200)));
  const absl::Duration took = absl::Now() - start;
  EXPECT_GE(took, absl::Milliseconds(200));
  EXPECT_LT(took, absl::Seconds(1));
  release.Notify();
  EXPECT_TRUE(runner.Stop(absl::InfiniteDuration()));
}

TEST(CollectorRunnerTest, StopIsCleanAndIdempotent) {
  std::vector<std::unique_ptr<Collector>> collectors;
  collectors.push_back(
      std::make_unique<FuncCollector>("a", [] { return std::vector<DeviceReport>{}; }));
  RunnerOptions config;
  config.interval = absl::Seconds(30);
  CollectorRunner runner(std::move(collectors), config);
  runner.Start();
  ASSERT_TRUE(WaitForSnapshot(
      runner.store(), [](const DeviceSnapshot& s) { return s.collectors[0].up; },
      absl::Seconds(5)));
  const absl::Time start = absl::Now();
  runner.Stop();
  runner.Stop();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));  // not a wait for the 30 s interval
}

}  // namespace
}  // namespace devscope
