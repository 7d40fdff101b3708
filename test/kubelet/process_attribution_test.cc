// The process attribution against a real CRI stand-in over a unix socket and a fixture procfs:
// processes named to their containers, the unattributed ones, a container that starts between
// two lists, and a runtime that is absent or too slow (attribution off, nothing waits on it).
#include "kubelet/process_attribution.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "demo/standin_container_runtime.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/support/metric_value.h"
#include "test/support/temp_dir.h"
#include "test/support/wait_for.h"

namespace devscope {
namespace {

std::string Id(char c) { return std::string(64, c); }

class ProcessAttributionTest : public ::testing::Test {
 protected:
  ProcessAttributionTest() {
    options_.procfs = dir_.Path("proc");
    options_.socket_path = dir_.Path("cri.sock");
    options_.interval = absl::Seconds(30);
    options_.timeout = absl::Milliseconds(300);
  }

  // A process in container `id` (empty: a host process).
  void Process(uint32_t pid, const std::string& id) {
    WriteFile(absl::StrCat(options_.procfs, "/", pid, "/cgroup"),
              id.empty() ? "0::/system.slice/sshd.service\n"
                         : absl::StrCat("0::/kubepods.slice/kubepods-pod1234.slice/"
                                        "cri-containerd-",
                                        id, ".scope\n"));
  }

  // A GPU used by `pids`.
  void Publish(std::vector<uint32_t> pids) {
    auto snapshot = std::make_shared<DeviceSnapshot>();
    CollectorReport collector;
    collector.collector = "nvml";
    DeviceReport gpu;
    gpu.info.id = "GPU-a";
    for (uint32_t pid : pids) gpu.processes.push_back(DeviceProcess{pid});
    collector.devices.push_back(gpu);
    snapshot->collectors.push_back(collector);
    devices_.Publish(snapshot);
  }

  // Waits for an attribution of the current device snapshot.
  std::shared_ptr<const ProcessAttribution> Attributed() {
    std::shared_ptr<const ProcessAttribution> current;
    WaitFor([&] {
      current = attributor_->store().Current();
      return current != nullptr && current->devices == devices_.Current();
    });
    return current;
  }

  void StartAttributor(const Clock& clock = Clock::Real()) {
    attributor_ = std::make_unique<ProcessAttributor>(options_, devices_, registry_, clock);
    attributor_->Start();
  }

  TempDir dir_;
  ProcessAttributionOptions options_;
  SnapshotStore<DeviceSnapshot> devices_;
  prometheus::Registry registry_;
  // For the tests that move time; declared before the attributor, whose thread reads it until
  // the attributor goes.
  FakeClock clock_;
  std::unique_ptr<ProcessAttributor> attributor_;
};

TEST_F(ProcessAttributionTest, NamesEachProcessesContainerAndLeavesTheRestUnattributed) {
  auto runtime = ContainerRuntimeStandin::Start(options_.socket_path);
  ASSERT_TRUE(runtime.ok()) << runtime.status();
  (*runtime)->SetContainers({{Id('a'), "ml", "trainer-0", "main"}, {Id('b'), "ml", "x", "y"}});
  Process(100, Id('a'));
  Process(101, Id('a'));
  Process(102, "");       // a host process
  Process(103, Id('c'));  // a container the runtime does not list
  // 104: gone before its cgroup was read
  Publish({100, 101, 102, 103, 104});
  StartAttributor();
  auto attribution = Attributed();
  ASSERT_NE(attribution, nullptr);
  EXPECT_TRUE(attribution->up);
  EXPECT_EQ(MetricValue(registry_, "devscope_process_attribution_up"), 1);
  ASSERT_EQ(attribution->containers.size(), 2u);
  EXPECT_EQ(attribution->containers.at(100), (ContainerName{"ml", "trainer-0", "main"}));
  EXPECT_EQ(attribution->containers.at(101), (ContainerName{"ml", "trainer-0", "main"}));
}

TEST_F(ProcessAttributionTest, AContainerThatStartedSinceTheLastListIsListedAgain) {
  auto runtime = ContainerRuntimeStandin::Start(options_.socket_path);
  ASSERT_TRUE(runtime.ok()) << runtime.status();
  Publish({});
  StartAttributor(clock_);
  ASSERT_TRUE(Attributed()->up);
  // A container that started after the list: not known yet, and no list again within a second.
  (*runtime)->SetContainers({{Id('a'), "ml", "new", "main"}});
  Process(200, Id('a'));
  Publish({200});
  EXPECT_FALSE(Attributed()->containers.contains(200));
  EXPECT_EQ((*runtime)->CallCount(), 1);
  // A second later (the interval is 30 s), the next pass's unknown container lists again.
  clock_.Advance(absl::Seconds(1));
  Publish({200});
  auto attribution = Attributed();
  ASSERT_TRUE(attribution->containers.contains(200));
  EXPECT_EQ(attribution->containers.at(200), (ContainerName{"ml", "new", "main"}));
  EXPECT_EQ((*runtime)->CallCount(), 2);
  // A container the runtime never lists (another runtime's) prompts one list, not one a second.
  Process(300, Id('c'));
  clock_.Advance(absl::Seconds(1));
  Publish({200, 300});
  EXPECT_FALSE(Attributed()->containers.contains(300));
  EXPECT_EQ((*runtime)->CallCount(), 3);
  clock_.Advance(absl::Seconds(1));
  Publish({200, 300});
  EXPECT_TRUE(Attributed()->containers.contains(200));
  EXPECT_EQ((*runtime)->CallCount(), 3);
}

TEST_F(ProcessAttributionTest, AnAbsentRuntimeTurnsAttributionOff) {
  Process(100, Id('a'));
  Publish({100});
  const absl::Time start = absl::Now();
  StartAttributor();
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(100));  // Start never waits on the runtime
  auto attribution = Attributed();
  ASSERT_NE(attribution, nullptr);
  EXPECT_FALSE(attribution->up);
  EXPECT_TRUE(attribution->containers.empty());
  EXPECT_EQ(MetricValue(registry_, "devscope_process_attribution_up"), 0);

  // The runtime comes: on at the next list.
  options_.interval = absl::Seconds(1);
  StartAttributor();
  auto runtime = ContainerRuntimeStandin::Start(options_.socket_path);
  ASSERT_TRUE(runtime.ok());
  (*runtime)->SetContainers({{Id('a'), "ml", "trainer-0", "main"}});
  EXPECT_TRUE(WaitFor(
      [&] {
        auto a = attributor_->store().Current();
        return a != nullptr && a->up && a->containers.contains(100);
      },
      absl::Seconds(5)));
}

TEST_F(ProcessAttributionTest, ASlowRuntimeTurnsAttributionOffAndStopIsPrompt) {
  auto runtime = ContainerRuntimeStandin::Start(options_.socket_path);
  ASSERT_TRUE(runtime.ok()) << runtime.status();
  (*runtime)->SetContainers({{Id('a'), "ml", "trainer-0", "main"}});
  (*runtime)->SetDelay(absl::Seconds(5));
  Process(100, Id('a'));
  Publish({100});
  StartAttributor();
  auto attribution = Attributed();
  ASSERT_NE(attribution, nullptr);
  EXPECT_FALSE(attribution->up);  // after the 300 ms timeout, not the runtime's 5 s
  // A list in flight is cancelled by Stop.
  options_.interval = absl::Seconds(1);
  StartAttributor();
  absl::SleepFor(absl::Milliseconds(50));
  const absl::Time stop = absl::Now();
  attributor_->Stop();
  EXPECT_LT(absl::Now() - stop, absl::Milliseconds(250));
}

TEST_F(ProcessAttributionTest, NoSocketMeansOff) {
  options_.socket_path = "";
  StartAttributor();
  auto attribution = attributor_->store().Current();
  ASSERT_NE(attribution, nullptr);
  EXPECT_FALSE(attribution->up);
}

}  // namespace
}  // namespace devscope
