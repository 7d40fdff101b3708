// The drm collector on fixture sysfs trees laid out like the kernel's: class/drm/cardN are
// symlinks into devices/pci0000:00/<pci>/drm/cardN, whose `device` link points back at the PCI
// function.
#include "collectors/drm.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "collectors/collector.h"
#include "collectors/health.h"
#include "collectors/registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/collectors/sysfs_fixture.h"

namespace devscope {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

class DrmTest : public SysfsFixtureTest {
 protected:
  void SetUp() override {
    SysfsFixtureTest::SetUp();
    fs::create_directories(roots_.sysfs + "/class/drm");
  }

  // A card as the kernel shows it: cardN and renderD(128+N) under the PCI function, their class
  // links, a connector, the driver link, and the /dev/dri nodes.
  void AddCard(int n, const std::string& pci, const std::string& vendor, const std::string& driver,
               const std::string& device_id = "0x73bf") {
    const std::string card = "card" + std::to_string(n);
    const std::string render = "renderD" + std::to_string(128 + n);
    const std::string dir = PciDir(pci);
    Write(dir + "/vendor", vendor + "\n");
    Write(dir + "/device", device_id + "\n");
    Write(dir + "/numa_node", "-1\n");
    fs::create_directories(roots_.sysfs + "/bus/pci/drivers/" + driver);
    Link(dir + "/driver", "../../../bus/pci/drivers/" + driver);
    fs::create_directories(dir + "/drm/" + card + "/" + card + "-DP-1");
    fs::create_directories(dir + "/drm/" + render);
    Link(dir + "/drm/" + card + "/device", "../../../" + pci);
    Link(dir + "/drm/" + render + "/device", "../../../" + pci);
    Link(roots_.sysfs + "/class/drm/" + card, "../../devices/pci0000:00/" + pci + "/drm/" + card);
    Link(roots_.sysfs + "/class/drm/" + render,
         "../../devices/pci0000:00/" + pci + "/drm/" + render);
    Link(roots_.sysfs + "/class/drm/" + card + "-DP-1",
         "../../devices/pci0000:00/" + pci + "/drm/" + card + "/" + card + "-DP-1");
    Write(roots_.devfs + "/dri/" + card, "");
    Write(roots_.devfs + "/dri/" + render, "");
  }

  std::vector<DeviceReport> Collect() {
    auto collector = NewDrmCollector(options_, roots_);
    EXPECT_TRUE(collector.ok()) << collector.status();
    if (!collector.ok()) return {};
    auto reports = (*collector)->Collect();
    EXPECT_TRUE(reports.ok()) << reports.status();
    return reports.ok() ? *reports : std::vector<DeviceReport>{};
  }

  DrmOptions options_;
};

std::optional<double> Value(const DeviceReport& report, const std::string& name,
                            const LabelPairs& labels = {}) {
  for (const Sample& sample : report.samples) {
    if (sample.name == name && sample.labels == labels) return sample.value;
  }
  return std::nullopt;
}

std::optional<Sample::Kind> KindOf(const DeviceReport& report, const std::string& name) {
  for (const Sample& sample : report.samples) {
    if (sample.name == name) return sample.kind;
  }
  return std::nullopt;
}

TEST_F(DrmTest, DiscoversCardsNotConnectorsOrRenderNodes) {
  AddCard(0, "0000:03:00.0", "0x1002", "amdgpu");
  const auto reports = Collect();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].info.id, "0000:03:00.0");
  EXPECT_EQ(reports[0].info.pci_address, "0000:03:00.0");
  EXPECT_THAT(reports[0].info.aliases, ElementsAre("card0", "renderD128"));
}

TEST_F(DrmTest, IdentityAndAllocateSpec) {
  AddCard(1, "0000:03:00.0", "0x1002", "amdgpu");
  Write(PciDir("0000:03:00.0") + "/product_name", "AMD Instinct MI210\n");
  Write(PciDir("0000:03:00.0") + "/numa_node", "1\n");
  const auto reports = Collect();
  ASSERT_EQ(reports.size(), 1u);
  const DeviceInfo& info = reports[0].info;
  EXPECT_EQ(info.vendor, "AMD");
  EXPECT_EQ(info.model, "AMD Instinct MI210");
  EXPECT_EQ(info.numa_node, 1);
  EXPECT_EQ(info.resource, "amd.com/gpu");
  EXPECT_FALSE(info.advertise);
  ASSERT_EQ(info.allocate.device_nodes.size(), 2u);
  // Host paths are the host's, whatever --path.devfs says: the kubelet resolves them on the host.
  EXPECT_EQ(info.allocate.device_nodes[0].host_path, "/dev/dri/card1");
  EXPECT_EQ(info.allocate.device_nodes[0].container_path, "/dev/dri/card1");
  EXPECT_EQ(info.allocate.device_nodes[0].permissions, "rw");
  EXPECT_EQ(info.allocate.device_nodes[1].host_path, "/dev/dri/renderD129");
  EXPECT_EQ(info.allocate.device_nodes[1].container_path, "/dev/dri/renderD129");
  EXPECT_TRUE(reports[0].health.healthy);
}

TEST_F(DrmTest, IntelResourceFollowsDriverAndModelFallsBackToDeviceId) {
  AddCard(0, "0000:00:02.0", "0x8086", "i915", "0x46a6");
  AddCard(1, "0000:04:00.0", "0x8086", "xe", "0x56a0");
  const auto reports = Collect();
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_EQ(reports[0].info.vendor, "Intel");
  EXPECT_EQ(reports[0].info.model, "0x46a6");
  EXPECT_EQ(reports[0].info.resource, "gpu.intel.com/i915");
  EXPECT_FALSE(reports[0].info.numa_node.has_value());  // numa_node -1
  EXPECT_EQ(reports[1].info.resource, "gpu.intel.com/xe");
  EXPECT_EQ(reports[1].info.model, "0x56a0");
}

TEST_F(DrmTest, AdvertisesOnlyWhenConfigured) {
  AddCard(0, "0000:03:00.0", "0x1002", "amdgpu");
  options_.advertise_resource = "example.com/gpu";
  const auto reports = Collect();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_TRUE(reports[0].info.advertise);
  EXPECT_EQ(reports[0].info.resource, "example.com/gpu");
}

TEST_F(DrmTest, TelemetryInBaseUnits) {
  AddCard(0, "0000:03:00.0", "0x1002", "amdgpu");
  const std::string dev = PciDir("0000:03:00.0");
  Write(dev + "/gpu_busy_percent", "37\n");
  Write(dev + "/mem_info_vram_total", "68702699520\n");
  Write(dev + "/mem_info_vram_used", "1048576\n");
  Write(dev + "/hwmon/hwmon4/temp1_input", "45000\n");
  Write(dev + "/hwmon/hwmon4/power1_average", "150000000\n");
  Write(dev + "/hwmon/hwmon4/power1_input", "999000000\n");  // power1_average wins
  Write(dev + "/hwmon/hwmon4/energy1_input", "2500000\n");
  Write(dev + "/ras/umc_err_count", "ue: 2\nce: 7\n");
  const auto reports = Collect();
  ASSERT_EQ(reports.size(), 1u);
  const DeviceReport& r = reports[0];
  EXPECT_DOUBLE_EQ(*Value(r, "devscope_device_utilization_ratio"), 0.37);
  EXPECT_DOUBLE_EQ(*Value(r, "devscope_device_memory_total_bytes"), 68702699520.0);
  EXPECT_DOUBLE_EQ(*Value(r, "devscope_device_memory_used_bytes"), 1048576.0);
  EXPECT_DOUBLE_EQ(*Value(r, "devscope_device_temperature_celsius"), 45.0);
  EXPECT_DOUBLE_EQ(*Value(r, "devscope_device_power_watts"), 150.0);
  EXPECT_DOUBLE_EQ(*Value(r, "devscope_device_energy_joules_total"), 2.5);
  EXPECT_EQ(KindOf(r, "devscope_device_energy_joules_total"), Sample::Kind::kCounter);
  EXPECT_EQ(KindOf(r, "devscope_device_temperature_celsius"), Sample::Kind::kGauge);
  EXPECT_EQ(Value(r, "devscope_device_errors_total", {{"kind", "ecc_uncorrected"}}), 2.0);
  EXPECT_EQ(Value(r, "devscope_device_errors_total", {{"kind", "ecc_corrected"}}), 7.0);
}

TEST_F(DrmTest, PowerFallsBackToPowerInput) {
  AddCard(0, "0000:03:00.0", "0x1002", "amdgpu");
  Write(PciDir("0000:03:00.0") + "/hwmon/hwmon2/power1_input", "42500000\n");
  const auto reports = Collect();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_DOUBLE_EQ(*Value(reports[0], "devscope_device_power_watts"), 42.5);
}

TEST_F(DrmTest, AbsentAttributesGiveNoSample) {
  AddCard(0, "0000:00:02.0", "0x8086", "i915", "0x46a6");
  const auto reports = Collect();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_THAT(reports[0].samples, IsEmpty());
}

TEST_F(DrmTest, MalformedAttributeIsSkippedOthersKept) {
  AddCard(0, "0000:03:00.0", "0x1002", "amdgpu");
  const std::string dev = PciDir("0000:03:00.0");
  Write(dev + "/gpu_busy_percent", "busy\n");
  Write(dev + "/mem_info_vram_used", "\n");
  Write(dev + "/hwmon/hwmon0/temp1_input", "51000\n");
  const auto reports = Collect();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_FALSE(Value(reports[0], "devscope_device_utilization_ratio").has_value());
  EXPECT_FALSE(Value(reports[0], "devscope_device_memory_used_bytes").has_value());
  EXPECT_DOUBLE_EQ(*Value(reports[0], "devscope_device_temperature_celsius"), 51.0);
}

TEST_F(DrmTest, OneBrokenCardDoesNotHideTheOthers) {
  AddCard(0, "0000:03:00.0", "0x1002", "amdgpu");
  // card1's device link dangles (the function was removed under us).
  fs::create_directories(roots_.sysfs + "/class/drm/card1");
  Link(roots_.sysfs + "/class/drm/card1/device", "../../../gone");
  // card2 has a vendor that is not hex.
  AddCard(2, "0000:05:00.0", "amd", "amdgpu");
  const auto reports = Collect();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].info.id, "0000:03:00.0");
}

TEST_F(DrmTest, OtherVendorsAreSkippedAndAbsentHardwareIsNotFound) {
  AddCard(0, "0000:01:00.0", "0x10de", "nvidia");
  auto collector = NewDrmCollector(options_, roots_);
  EXPECT_EQ(collector.status().code(), absl::StatusCode::kNotFound);

  const NodeRoots empty{.sysfs = root_ + "/nothing"};
  EXPECT_EQ(NewDrmCollector(options_, empty).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(DrmTest, MissingDeviceNodeIsUnhealthy) {
  AddCard(0, "0000:03:00.0", "0x1002", "amdgpu");
  fs::remove(roots_.devfs + "/dri/renderD128");
  auto reports = Collect();
  ASSERT_EQ(reports.size(), 1u);
  // The collector reports what it saw; the health model (run by the runner) checks the nodes once,
  // under the devfs root.
  EXPECT_TRUE(reports[0].health.healthy);
  HealthModel(HealthOptions{}, roots_).Apply(reports[0]);
  EXPECT_FALSE(reports[0].health.healthy);
  EXPECT_EQ(reports[0].health.reason, "device node /dev/dri/renderD128 missing");
}

TEST_F(DrmTest, DisabledPciFunctionIsUnhealthy) {
  AddCard(0, "0000:03:00.0", "0x1002", "amdgpu");
  Write(PciDir("0000:03:00.0") + "/enable", "0\n");
  const auto reports = Collect();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_FALSE(reports[0].health.healthy);
  EXPECT_EQ(reports[0].health.reason, "PCI device disabled");
}

TEST_F(DrmTest, ACardThatVanishesIsNoLongerReported) {
  AddCard(0, "0000:03:00.0", "0x1002", "amdgpu");
  AddCard(1, "0000:04:00.0", "0x1002", "amdgpu");
  auto collector = NewDrmCollector(options_, roots_);
  ASSERT_TRUE(collector.ok());
  ASSERT_EQ((*collector)->Collect()->size(), 2u);
  fs::remove(roots_.sysfs + "/class/drm/card1");
  auto reports = (*collector)->Collect();
  ASSERT_TRUE(reports.ok());
  ASSERT_EQ(reports->size(), 1u);
  EXPECT_EQ((*reports)[0].info.aliases[0], "card0");
}

}  // namespace
}  // namespace devscope
