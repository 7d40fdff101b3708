// The nvml collector against the fake libnvidia-ml (test/collectors/nvml_fixture.h): identity,
// allocate spec, the first telemetry, MIG, XID health, a lost GPU, and its teardown.
#include <poll.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/collectors/nvml_fixture.h"

namespace devscope {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;

constexpr char kGpu0[] = "GPU-11111111-2222-3333-4444-555555555555";
constexpr char kGpu1[] = "GPU-66666666-7777-8888-9999-000000000000";
constexpr char kMig1[] = "MIG-aaaaaaaa-0000-0000-0000-000000000001";
constexpr char kMig2[] = "MIG-aaaaaaaa-0000-0000-0000-000000000002";

class NvmlTest : public NvmlFixture {
 protected:
  void Write(const std::string& path, const std::string& content) {
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream(path) << content;
  }

  // A GPU with the attributes the collector has read from the start.
  int AddFullGpu(const char* uuid, const char* bus_id, unsigned minor) {
    const int slot = fake_.add_gpu(uuid, "NVIDIA A100-SXM4-40GB", bus_id);
    fake_.set(slot, "minor", minor);
    fake_.set(slot, "util_gpu", 42);
    fake_.set(slot, "util_memory", 10);
    fake_.set(slot, "mem_total", 40ULL << 30);
    fake_.set(slot, "mem_used", 1ULL << 30);
    fake_.set(slot, "temperature", 61);
    fake_.set(slot, "power_mw", 250500);
    fake_.set(slot, "energy_mj", 123456789);
    fake_.set(slot, "ecc_corrected", 5);
    fake_.set(slot, "ecc_uncorrected", 1);
    fake_.set_serial(slot, "1564720004631");
    return slot;
  }
};

std::optional<double> XidCount(const std::vector<DeviceReport>& reports, const std::string& id) {
  const DeviceReport* report = Find(reports, id);
  if (report == nullptr) return std::nullopt;
  return Value(*report, "devscope_device_errors_total", {{"kind", "xid"}});
}

TEST_F(NvmlTest, LibraryAbsentIsNotFound) {
  options_.library = root_ + "/libnvidia-ml.so.1";
  EXPECT_EQ(NewNvmlCollector(options_, roots_).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(NvmlTest, DriverNotLoadedOrNoGpuIsNotFound) {
  fake_.set_init_result(NVML_ERROR_DRIVER_NOT_LOADED);
  EXPECT_EQ(NewNvmlCollector(options_, roots_).status().code(), absl::StatusCode::kNotFound);
  fake_.set_init_result(NVML_SUCCESS);
  EXPECT_EQ(NewNvmlCollector(options_, roots_).status().code(),
            absl::StatusCode::kNotFound);  // no GPU
  EXPECT_EQ(fake_.init_calls(), 2);
  EXPECT_EQ(fake_.shutdown_calls(), 1);  // the init that succeeded is shut down
}

TEST_F(NvmlTest, IdentityAliasesNumaAndAllocateSpec) {
  AddFullGpu(kGpu0, "00000000:3B:00.0", 3);
  Write(roots_.sysfs + "/bus/pci/devices/0000:3b:00.0/numa_node", "1\n");
  Write(roots_.devfs + "/nvidiactl", "");
  Write(roots_.devfs + "/nvidia-uvm", "");
  auto collector = Make();
  ASSERT_NE(collector, nullptr);
  const auto reports = Collect(*collector);
  ASSERT_EQ(reports.size(), 1u);
  const DeviceInfo& info = reports[0].info;
  EXPECT_EQ(info.id, kGpu0);
  EXPECT_THAT(info.aliases, ElementsAre("0000:3b:00.0"));
  EXPECT_EQ(info.pci_address, "0000:3b:00.0");
  EXPECT_EQ(info.numa_node, 1);
  EXPECT_EQ(info.vendor, "NVIDIA");
  EXPECT_EQ(info.model, "NVIDIA A100-SXM4-40GB");
  EXPECT_EQ(info.serial, "1564720004631");
  EXPECT_EQ(info.minor, 3u);  // NVIDIA's DRA driver names it gpu-3
  EXPECT_EQ(info.resource, "nvidia.com/gpu");
  EXPECT_FALSE(info.advertise);
  ASSERT_EQ(info.allocate.device_nodes.size(), 3u);  // nvidia-uvm-tools absent: not handed out
  // Host paths are the host's, whatever --path.devfs says: the kubelet resolves them on the host.
  EXPECT_EQ(info.allocate.device_nodes[0].host_path, "/dev/nvidia3");
  EXPECT_EQ(info.allocate.device_nodes[1].host_path, "/dev/nvidiactl");
  EXPECT_EQ(info.allocate.device_nodes[2].host_path, "/dev/nvidia-uvm");
  EXPECT_EQ(info.allocate.device_nodes[0].container_path, "/dev/nvidia3");
  EXPECT_EQ(info.allocate.device_nodes[1].container_path, "/dev/nvidiactl");
  EXPECT_EQ(info.allocate.device_nodes[2].container_path, "/dev/nvidia-uvm");
  EXPECT_TRUE(reports[0].health.healthy);
}

TEST_F(NvmlTest, NumaMinusOneIsAbsent) {
  AddFullGpu(kGpu0, "00000000:3B:00.0", 0);
  Write(roots_.sysfs + "/bus/pci/devices/0000:3b:00.0/numa_node", "-1\n");
  auto collector = Make();
  ASSERT_NE(collector, nullptr);
  const auto reports = Collect(*collector);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_FALSE(reports[0].info.numa_node.has_value());
}

TEST_F(NvmlTest, TelemetryInBaseUnits) {
  AddFullGpu(kGpu0, "00000000:3B:00.0", 0);
  auto collector = Make();
  ASSERT_NE(collector, nullptr);
  const auto reports = Collect(*collector);
  ASSERT_EQ(reports.size(), 1u);
  const DeviceReport& r = reports[0];
  EXPECT_DOUBLE_EQ(*Value(r, "devscope_device_utilization_ratio"), 0.42);
  EXPECT_DOUBLE_EQ(*Value(r, "devscope_device_memory_total_bytes"), 40.0 * (1ULL << 30));
  EXPECT_DOUBLE_EQ(*Value(r, "devscope_device_memory_used_bytes"), 1.0 * (1ULL << 30));
  EXPECT_DOUBLE_EQ(*Value(r, "devscope_device_temperature_celsius"), 61);
  EXPECT_DOUBLE_EQ(*Value(r, "devscope_device_power_watts"), 250.5);
  EXPECT_DOUBLE_EQ(*Value(r, "devscope_device_energy_joules_total"), 123456.789);
  EXPECT_EQ(Value(r, "devscope_device_errors_total", {{"kind", "ecc_corrected"}}), 5);
  EXPECT_EQ(Value(r, "devscope_device_errors_total", {{"kind", "ecc_uncorrected"}}), 1);
  EXPECT_EQ(Value(r, "devscope_device_errors_total", {{"kind", "xid"}}), 0);
  for (const Sample& sample : r.samples) {
    const bool counter =
        sample.name.size() > 6 && sample.name.compare(sample.name.size() - 6, 6, "_total") == 0;
    EXPECT_EQ(sample.kind, counter ? Sample::Kind::kCounter : Sample::Kind::kGauge) << sample.name;
  }
}

TEST_F(NvmlTest, NotSupportedAttributesAreAbsent) {
  const int slot = fake_.add_gpu(kGpu0, "Tesla T4", "00000000:65:00.0");
  fake_.set(slot, "mem_total", 16ULL << 30);
  fake_.set(slot, "mem_used", 0);
  auto collector = Make();
  ASSERT_NE(collector, nullptr);
  const auto reports = Collect(*collector);
  ASSERT_EQ(reports.size(), 1u);
  const DeviceReport& r = reports[0];
  EXPECT_EQ(Value(r, "devscope_device_memory_used_bytes"), 0);  // a real zero stays
  EXPECT_FALSE(Value(r, "devscope_device_utilization_ratio"));
  EXPECT_FALSE(Value(r, "devscope_device_temperature_celsius"));
  EXPECT_FALSE(Value(r, "devscope_device_power_watts"));
  EXPECT_FALSE(Value(r, "devscope_device_energy_joules_total"));
  EXPECT_FALSE(Value(r, "devscope_device_errors_total", {{"kind", "ecc_corrected"}}));
  EXPECT_EQ(r.info.serial, "");
  EXPECT_TRUE(r.info.allocate.device_nodes.empty());  // no minor number, no control nodes
  EXPECT_TRUE(r.health.healthy);
}

TEST_F(NvmlTest, SeveralGpusInIndexOrder) {
  AddFullGpu(kGpu0, "00000000:3B:00.0", 0);
  AddFullGpu(kGpu1, "00000001:86:00.0", 1);
  auto collector = Make();
  ASSERT_NE(collector, nullptr);
  const auto reports = Collect(*collector);
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_EQ(reports[0].info.id, kGpu0);
  EXPECT_EQ(reports[1].info.id, kGpu1);
  EXPECT_EQ(reports[1].info.pci_address, "0001:86:00.0");
}

TEST_F(NvmlTest, MigDevicesAreSeparateDevices) {
  const int gpu = AddFullGpu(kGpu0, "00000000:3B:00.0", 0);
  const int mig1 = fake_.add_mig(gpu, kMig1, "NVIDIA A100-SXM4-40GB MIG 1g.5gb", 1);
  fake_.set(mig1, "mem_total", 5ULL << 30);
  fake_.set(mig1, "mem_used", 1ULL << 20);
  fake_.add_mig(gpu, kMig2, "NVIDIA A100-SXM4-40GB MIG 3g.20gb", 2);
  Write(roots_.sysfs + "/bus/pci/devices/0000:3b:00.0/numa_node", "0\n");
  options_.advertise_resource = "nvidia.com/gpu";
  auto collector = Make();
  ASSERT_NE(collector, nullptr);
  const auto reports = Collect(*collector);
  ASSERT_EQ(reports.size(), 3u);
  const DeviceReport* parent = Find(reports, kGpu0);
  const DeviceReport* m1 = Find(reports, kMig1);
  const DeviceReport* m2 = Find(reports, kMig2);
  ASSERT_NE(parent, nullptr);
  ASSERT_NE(m1, nullptr);
  ASSERT_NE(m2, nullptr);
  // With MIG on, pods get MIG devices: those are advertised, the parent is not.
  EXPECT_FALSE(parent->info.advertise);
  EXPECT_TRUE(m1->info.advertise);
  // A MIG device has no minor of its own: without its placement it must not pass for its GPU.
  EXPECT_EQ(parent->info.minor, 0u);
  EXPECT_FALSE(m1->info.minor.has_value());
  EXPECT_EQ(m1->info.resource, "nvidia.com/gpu");
  EXPECT_EQ(m1->info.model, "NVIDIA A100-SXM4-40GB MIG 1g.5gb");
  EXPECT_EQ(m1->info.pci_address, "0000:3b:00.0");
  EXPECT_EQ(m1->info.numa_node, 0);
  EXPECT_EQ(Value(*m1, "devscope_device_memory_total_bytes"), 5.0 * (1ULL << 30));
  EXPECT_FALSE(Value(*m1, "devscope_device_utilization_ratio"));  // not supported on MIG
  EXPECT_EQ(
      Value(*m1, "devscope_device_mig_info", {{"parent_device", kGpu0}, {"gpu_instance_id", "1"}}),
      1);
  EXPECT_EQ(
      Value(*m2, "devscope_device_mig_info", {{"parent_device", kGpu0}, {"gpu_instance_id", "2"}}),
      1);
}

// The host paths of a device's Allocate nodes.
std::vector<std::string> NodePaths(const DeviceReport& report) {
  std::vector<std::string> paths;
  for (const auto& node : report.info.allocate.device_nodes) paths.push_back(node.host_path);
  return paths;
}

TEST_F(NvmlTest, MigDevicesGetTheCapabilityNodesOfTheirInstances) {
  const int gpu = AddFullGpu(kGpu0, "00000000:3B:00.0", 3);  // /dev/nvidia3
  fake_.add_mig(gpu, kMig1, "MIG 1g.5gb", 1);
  const int mig2 = fake_.add_mig(gpu, kMig2, "MIG 3g.20gb", 2);
  fake_.set_compute_instance(mig2, 1);
  // The driver's table, keyed by the parent's minor (3), and the nodes nvidia-modprobe made.
  Write(options_.mig_minors_file,
        "config 1\nmonitor 2\ngpu3/gi1/access 30\ngpu3/gi1/ci0/access 31\n"
        "gpu3/gi2/access 39\ngpu3/gi2/ci0/access 40\ngpu3/gi2/ci1/access 41\n"
        "gpu0/gi1/access 3\ngpu0/gi1/ci0/access 4\n");
  for (const char* node :
       {"nvidia3", "nvidiactl", "nvidia-caps/nvidia-cap30", "nvidia-caps/nvidia-cap31",
        "nvidia-caps/nvidia-cap39", "nvidia-caps/nvidia-cap41"}) {
    Write(roots_.devfs + "/" + node, "");
  }
  options_.advertise_resource = "nvidia.com/gpu";
  auto collector = Make();
  ASSERT_NE(collector, nullptr);
  const auto reports = Collect(*collector);
  const DeviceReport* m1 = Find(reports, kMig1);
  const DeviceReport* m2 = Find(reports, kMig2);
  ASSERT_NE(m1, nullptr);
  ASSERT_NE(m2, nullptr);
  const std::string dev = "/dev/";  // the host's paths, not the fixture's devfs root
  // The parent's node and the control node, then the GPU instance's and compute instance's caps.
  EXPECT_THAT(NodePaths(*m1),
              ElementsAre(dev + "nvidia3", dev + "nvidiactl", dev + "nvidia-caps/nvidia-cap30",
                          dev + "nvidia-caps/nvidia-cap31"));
  EXPECT_THAT(NodePaths(*m2),
              ElementsAre(dev + "nvidia3", dev + "nvidiactl", dev + "nvidia-caps/nvidia-cap39",
                          dev + "nvidia-caps/nvidia-cap41"));
  EXPECT_EQ(m1->info.allocate.device_nodes[2].container_path, "/dev/nvidia-caps/nvidia-cap30");
  // The whole GPU gets none: with MIG on it is not what pods are given.
  EXPECT_THAT(NodePaths(*Find(reports, kGpu0)), ElementsAre(dev + "nvidia3", dev + "nvidiactl"));
}

TEST_F(NvmlTest, MigDevicesWithoutTheMinorsTableKeepTheParentsNodes) {
  const int gpu = AddFullGpu(kGpu0, "00000000:3B:00.0", 0);
  fake_.add_mig(gpu, kMig1, "MIG 1g.5gb", 1);
  Write(roots_.devfs + "/nvidia0", "");
  auto collector = Make();  // no mig-minors file: logged once, the pass goes on
  ASSERT_NE(collector, nullptr);
  const auto reports = Collect(*collector);
  ASSERT_NE(Find(reports, kMig1), nullptr);
  EXPECT_THAT(NodePaths(*Find(reports, kMig1)), ElementsAre("/dev/nvidia0"));
}

TEST_F(NvmlTest, CriticalXidMakesGpuUnhealthyAndWakesTheRunner) {
  AddFullGpu(kGpu0, "00000000:3B:00.0", 0);
  AddFullGpu(kGpu1, "00000000:86:00.0", 1);
  auto collector = Make();
  ASSERT_NE(collector, nullptr);
  ASSERT_GE(collector->watch_fd(), 0);
  ASSERT_TRUE(fake_.registered(0));
  fake_.inject_xid(0, 79, NVML_INVALID_INSTANCE_ID);

  pollfd pfd = {collector->watch_fd(), POLLIN, 0};
  ASSERT_EQ(poll(&pfd, 1, 10000), 1) << "watch_fd never became readable";
  collector->DrainWatch();
  const auto reports = CollectUntil(*collector, [](const std::vector<DeviceReport>& r) {
    return Find(r, kGpu0) != nullptr && !Find(r, kGpu0)->health.healthy;
  });
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_FALSE(Find(reports, kGpu0)->health.healthy);
  EXPECT_EQ(Find(reports, kGpu0)->health.reason, "xid 79");
  EXPECT_TRUE(Find(reports, kGpu1)->health.healthy);
  EXPECT_EQ(XidCount(reports, kGpu0), 1);
  // Drained: not readable any more.
  pfd.revents = 0;
  EXPECT_EQ(poll(&pfd, 1, 0), 0);
}

TEST_F(NvmlTest, AGpuFirstSeenAfterStartIsRegisteredForXids) {
  AddFullGpu(kGpu0, "00000000:3B:00.0", 0);
  auto collector = Make();
  ASSERT_NE(collector, nullptr);
  // NVML lists a second GPU only now (back from a reset, say).
  const int late = AddFullGpu(kGpu1, "00000000:86:00.0", 1);
  EXPECT_FALSE(fake_.registered(late));
  ASSERT_EQ(Collect(*collector).size(), 2u);
  EXPECT_TRUE(fake_.registered(late));
  fake_.inject_xid(late, 48, NVML_INVALID_INSTANCE_ID);
  const auto reports = CollectUntil(*collector, [](const std::vector<DeviceReport>& r) {
    return Find(r, kGpu1) != nullptr && !Find(r, kGpu1)->health.healthy;
  });
  ASSERT_NE(Find(reports, kGpu1), nullptr);
  EXPECT_EQ(Find(reports, kGpu1)->health.reason, "xid 48");
  EXPECT_TRUE(Find(reports, kGpu0)->health.healthy);
}

TEST_F(NvmlTest, IgnoredXidsLeaveHealthAlone) {
  AddFullGpu(kGpu0, "00000000:3B:00.0", 0);
  options_.ignored_xids = {13, 31, 43, 45, 68, 94};
  auto collector = Make();
  ASSERT_NE(collector, nullptr);
  fake_.inject_xid(0, 13, NVML_INVALID_INSTANCE_ID);
  fake_.inject_xid(0, 94, NVML_INVALID_INSTANCE_ID);
  // Both events seen (the counter says so), and still healthy.
  const auto reports = CollectUntil(
      *collector, [](const std::vector<DeviceReport>& r) { return XidCount(r, kGpu0) == 2; });
  ASSERT_EQ(XidCount(reports, kGpu0), 2);
  EXPECT_TRUE(Find(reports, kGpu0)->health.healthy);
}

TEST_F(NvmlTest, XidHealthRecoversAfterTheQuietPeriod) {
  AddFullGpu(kGpu0, "00000000:3B:00.0", 0);
  options_.xid_recovery = absl::Milliseconds(300);
  FakeClock clock;
  auto made = NewNvmlCollector(options_, roots_, clock);
  ASSERT_TRUE(made.ok()) << made.status();
  Collector& collector = **made;
  fake_.inject_xid(0, 48, NVML_INVALID_INSTANCE_ID);
  // The event thread's bridge is real: wait for it. The quiet period is on the clock.
  auto reports = CollectUntil(collector, [](const std::vector<DeviceReport>& r) {
    return !Find(r, kGpu0)->health.healthy;
  });
  ASSERT_EQ(Find(reports, kGpu0)->health.reason, "xid 48");
  clock.Advance(absl::Milliseconds(299));
  EXPECT_EQ(Find(Collect(collector), kGpu0)->health.reason, "xid 48");
  clock.Advance(absl::Milliseconds(1));
  reports = Collect(collector);
  EXPECT_TRUE(Find(reports, kGpu0)->health.healthy);
  EXPECT_EQ(XidCount(reports, kGpu0), 1);  // the counter keeps the history
}

TEST_F(NvmlTest, XidOnAMigInstanceMarksOnlyThatMigDevice) {
  const int gpu = AddFullGpu(kGpu0, "00000000:3B:00.0", 0);
  fake_.add_mig(gpu, kMig1, "MIG 1g.5gb", 1);
  fake_.add_mig(gpu, kMig2, "MIG 1g.5gb", 2);
  auto collector = Make();
  ASSERT_NE(collector, nullptr);
  fake_.inject_xid(gpu, 94, 2);  // 94 (contained ECC error) is critical by default
  auto reports = CollectUntil(*collector, [](const std::vector<DeviceReport>& r) {
    return Find(r, kMig2) != nullptr && !Find(r, kMig2)->health.healthy;
  });
  ASSERT_EQ(reports.size(), 3u);
  EXPECT_EQ(Find(reports, kMig2)->health.reason, "xid 94");
  EXPECT_TRUE(Find(reports, kMig1)->health.healthy);
  EXPECT_TRUE(Find(reports, kGpu0)->health.healthy);

  // A whole-GPU XID takes the parent and every MIG device with it.
  fake_.inject_xid(gpu, 79, NVML_INVALID_INSTANCE_ID);
  reports = CollectUntil(*collector, [](const std::vector<DeviceReport>& r) {
    return !Find(r, kGpu0)->health.healthy;
  });
  EXPECT_EQ(Find(reports, kGpu0)->health.reason, "xid 79");
  EXPECT_EQ(Find(reports, kMig1)->health.reason, "xid 79");
  EXPECT_FALSE(Find(reports, kMig2)->health.healthy);
}

TEST_F(NvmlTest, LostGpuIsReportedUnhealthyWithWhatWasKnown) {
  AddFullGpu(kGpu0, "00000000:3B:00.0", 0);
  AddFullGpu(kGpu1, "00000000:86:00.0", 1);
  auto collector = Make();
  ASSERT_NE(collector, nullptr);
  ASSERT_EQ(Collect(*collector).size(), 2u);
  fake_.set_lost(1, 1);
  auto reports = Collect(*collector);
  ASSERT_EQ(reports.size(), 2u);
  const DeviceReport* lost = Find(reports, kGpu1);
  ASSERT_NE(lost, nullptr);
  EXPECT_FALSE(lost->health.healthy);
  EXPECT_EQ(lost->health.reason, "gpu lost");
  EXPECT_EQ(lost->info.pci_address, "0000:86:00.0");
  EXPECT_TRUE(lost->samples.empty());
  EXPECT_TRUE(Find(reports, kGpu0)->health.healthy);
  // Back on the bus: healthy again.
  fake_.set_lost(1, 0);
  reports = Collect(*collector);
  EXPECT_TRUE(Find(reports, kGpu1)->health.healthy);
}

TEST_F(NvmlTest, ShutsDownAndFreesEventsOnDestruction) {
  AddFullGpu(kGpu0, "00000000:3B:00.0", 0);
  {
    auto collector = Make();
    ASSERT_NE(collector, nullptr);
    EXPECT_EQ(fake_.event_sets_open(), 1);
    Collect(*collector);
  }
  EXPECT_EQ(fake_.init_calls(), 1);
  EXPECT_EQ(fake_.shutdown_calls(), 1);
  EXPECT_EQ(fake_.event_sets_open(), 0);
}

}  // namespace
}  // namespace devscope
