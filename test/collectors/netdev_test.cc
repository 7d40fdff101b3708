// The netdev collector on fixture sysfs trees laid out like the kernel's: class/net/<name> links
// into devices/pci0000:00/<pci>/net/<name> (whose `device` link points back at the function) or
// into devices/virtual/net/<name> (no device link); SR-IOV PFs have virtfnN links to their VFs and
// VFs a physfn link back.
#include "collectors/netdev.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
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

class NetdevTest : public SysfsFixtureTest {
 protected:
  void SetUp() override {
    SysfsFixtureTest::SetUp();
    fs::create_directories(roots_.sysfs + "/class/net");
  }

  // A PCI function, listed on the bus as the kernel does; no driver when `driver` is empty.
  void AddFunction(const std::string& pci, const std::string& driver,
                   const std::string& vendor = "0x15b3", const std::string& device = "0x101d",
                   const std::string& pci_class = "0x020000") {
    const std::string dir = PciDir(pci);
    Write(dir + "/vendor", vendor + "\n");
    Write(dir + "/device", device + "\n");
    Write(dir + "/class", pci_class + "\n");
    Write(dir + "/numa_node", "0\n");
    Link(roots_.sysfs + "/bus/pci/devices/" + pci, "../../../devices/pci0000:00/" + pci);
    if (driver.empty()) return;
    fs::create_directories(roots_.sysfs + "/bus/pci/drivers/" + driver);
    Link(dir + "/driver", "../../../bus/pci/drivers/" + driver);
  }

  // A netdev of the function at `pci`, up, with every statistics counter set.
  void AddNetdev(const std::string& name, const std::string& pci,
                 const std::string& operstate = "up") {
    const std::string dir = PciDir(pci) + "/net/" + name;
    Link(dir + "/device", "../../../" + pci);
    Link(roots_.sysfs + "/class/net/" + name, "../../devices/pci0000:00/" + pci + "/net/" + name);
    Write(dir + "/operstate", operstate + "\n");
    Write(dir + "/carrier", operstate == "up" ? "1\n" : "0\n");
    Write(dir + "/speed", "25000\n");
    const std::map<std::string, int> stats = {
        {"rx_bytes", 1000}, {"tx_bytes", 2000}, {"rx_packets", 10}, {"tx_packets", 20},
        {"rx_errors", 1},   {"tx_errors", 2},   {"rx_dropped", 3},  {"tx_dropped", 4}};
    for (const auto& [file, value] : stats) {
      Write(dir + "/statistics/" + file, std::to_string(value) + "\n");
    }
  }

  void AddVirtual(const std::string& name) {
    const std::string dir = roots_.sysfs + "/devices/virtual/net/" + name;
    Write(dir + "/operstate", "unknown\n");
    Write(dir + "/statistics/rx_bytes", "5\n");
    Link(roots_.sysfs + "/class/net/" + name, "../../devices/virtual/net/" + name);
  }

  // `vf` becomes virtfn<n> of `pf`.
  void AddVf(const std::string& pf, int n, const std::string& vf) {
    Link(PciDir(pf) + "/virtfn" + std::to_string(n), "../" + vf);
    Link(PciDir(vf) + "/physfn", "../" + pf);
  }

  std::vector<DeviceReport> Collect() {
    auto collector = NewNetdevCollector(options_, roots_);
    EXPECT_TRUE(collector.ok()) << collector.status();
    if (!collector.ok()) return {};
    auto reports = (*collector)->Collect();
    EXPECT_TRUE(reports.ok()) << reports.status();
    return reports.ok() ? *reports : std::vector<DeviceReport>{};
  }

  NetdevOptions options_;
};

std::optional<double> Value(const DeviceReport& report, const std::string& name,
                            const LabelPairs& labels) {
  for (const Sample& sample : report.samples) {
    if (sample.name == name && sample.labels == labels) return sample.value;
  }
  return std::nullopt;
}

const DeviceReport* Find(const std::vector<DeviceReport>& reports, const std::string& id) {
  for (const DeviceReport& report : reports) {
    if (report.info.id == id) return &report;
  }
  return nullptr;
}

TEST_F(NetdevTest, PhysicalNicsOnlyLoopbackAndVirtualSkipped) {
  AddFunction("0000:3b:00.0", "mlx5_core");
  AddNetdev("ens1f0", "0000:3b:00.0");
  AddVirtual("lo");
  AddVirtual("cni0");
  const auto reports = Collect();
  ASSERT_EQ(reports.size(), 1u);
  const DeviceInfo& info = reports[0].info;
  EXPECT_EQ(info.id, "0000:3b:00.0");
  EXPECT_EQ(info.pci_address, "0000:3b:00.0");
  EXPECT_THAT(info.aliases, ElementsAre("ens1f0"));
  EXPECT_EQ(info.vendor, "Mellanox");
  EXPECT_EQ(info.model, "0x101d");
  EXPECT_EQ(info.numa_node, 0);
  EXPECT_EQ(info.resource, "");
  EXPECT_FALSE(info.advertise);
  EXPECT_THAT(info.allocate.device_nodes, IsEmpty());
  EXPECT_TRUE(reports[0].health.healthy);
}

TEST_F(NetdevTest, CountersLinkAndSpeed) {
  AddFunction("0000:3b:00.0", "ice", "0x8086", "0x159b");
  AddNetdev("eth0", "0000:3b:00.0");
  const auto reports = Collect();
  ASSERT_EQ(reports.size(), 1u);
  const DeviceReport& r = reports[0];
  const LabelPairs eth0 = {{"interface", "eth0"}};
  EXPECT_EQ(r.info.vendor, "Intel");
  EXPECT_EQ(Value(r, "devscope_device_network_receive_bytes_total", eth0), 1000);
  EXPECT_EQ(Value(r, "devscope_device_network_transmit_bytes_total", eth0), 2000);
  EXPECT_EQ(Value(r, "devscope_device_network_receive_packets_total", eth0), 10);
  EXPECT_EQ(Value(r, "devscope_device_network_transmit_packets_total", eth0), 20);
  EXPECT_EQ(Value(r, "devscope_device_network_receive_drop_total", eth0), 3);
  EXPECT_EQ(Value(r, "devscope_device_network_transmit_drop_total", eth0), 4);
  EXPECT_EQ(
      Value(r, "devscope_device_errors_total", {{"kind", "rx_errors"}, {"interface", "eth0"}}), 1);
  EXPECT_EQ(
      Value(r, "devscope_device_errors_total", {{"kind", "tx_errors"}, {"interface", "eth0"}}), 2);
  EXPECT_EQ(Value(r, "devscope_device_link_up", eth0), 1);
  EXPECT_EQ(Value(r, "devscope_device_link_speed_bytes_per_second", eth0), 25000.0 * 1e6 / 8);
  for (const Sample& sample : r.samples) {
    const bool counter =
        sample.name.size() > 6 && sample.name.compare(sample.name.size() - 6, 6, "_total") == 0;
    EXPECT_EQ(sample.kind, counter ? Sample::Kind::kCounter : Sample::Kind::kGauge) << sample.name;
  }
}

TEST_F(NetdevTest, UnknownSpeedAndAbsentCountersGiveNoSample) {
  AddFunction("0000:3b:00.0", "ice");
  AddNetdev("eth0", "0000:3b:00.0");
  const std::string dir = PciDir("0000:3b:00.0") + "/net/eth0";
  Write(dir + "/speed", "-1\n");
  fs::remove(dir + "/statistics/tx_bytes");
  const auto reports = Collect();
  ASSERT_EQ(reports.size(), 1u);
  const LabelPairs eth0 = {{"interface", "eth0"}};
  EXPECT_FALSE(Value(reports[0], "devscope_device_link_speed_bytes_per_second", eth0));
  EXPECT_FALSE(Value(reports[0], "devscope_device_network_transmit_bytes_total", eth0));
  EXPECT_EQ(Value(reports[0], "devscope_device_network_receive_bytes_total", eth0), 1000);
}

TEST_F(NetdevTest, MalformedCounterIsSkippedOthersKept) {
  AddFunction("0000:3b:00.0", "ice");
  AddNetdev("eth0", "0000:3b:00.0");
  Write(PciDir("0000:3b:00.0") + "/net/eth0/statistics/rx_bytes", "lots\n");
  const auto reports = Collect();
  ASSERT_EQ(reports.size(), 1u);
  const LabelPairs eth0 = {{"interface", "eth0"}};
  EXPECT_FALSE(Value(reports[0], "devscope_device_network_receive_bytes_total", eth0));
  EXPECT_EQ(Value(reports[0], "devscope_device_network_transmit_bytes_total", eth0), 2000);
}

TEST_F(NetdevTest, LinkDownIsUnhealthy) {
  AddFunction("0000:3b:00.0", "ice");
  AddNetdev("eth0", "0000:3b:00.0", "down");
  // The kernel refuses to read speed while the link is down.
  fs::remove(PciDir("0000:3b:00.0") + "/net/eth0/speed");
  const auto reports = Collect();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_FALSE(reports[0].health.healthy);
  EXPECT_EQ(reports[0].health.reason, "link down");
  EXPECT_EQ(Value(reports[0], "devscope_device_link_up", {{"interface", "eth0"}}), 0);
}

TEST_F(NetdevTest, UnknownOperstateFallsBackToCarrier) {
  AddFunction("0000:00:03.0", "e1000");
  AddNetdev("eth0", "0000:00:03.0");
  Write(PciDir("0000:00:03.0") + "/net/eth0/operstate", "unknown\n");
  const auto reports = Collect();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_TRUE(reports[0].health.healthy);
  EXPECT_EQ(Value(reports[0], "devscope_device_link_up", {{"interface", "eth0"}}), 1);
}

TEST_F(NetdevTest, SriovPfAndVfs) {
  AddFunction("0000:3b:00.0", "mlx5_core");
  AddNetdev("ens1f0", "0000:3b:00.0");
  Write(PciDir("0000:3b:00.0") + "/sriov_totalvfs", "8\n");
  Write(PciDir("0000:3b:00.0") + "/sriov_numvfs", "2\n");
  // VF 0 has a netdev; VF 1 is bound to vfio-pci and has none.
  AddFunction("0000:3b:00.2", "mlx5_core", "0x15b3", "0x101e");
  AddNetdev("ens1f0v0", "0000:3b:00.2");
  AddVf("0000:3b:00.0", 0, "0000:3b:00.2");
  AddFunction("0000:3b:00.3", "vfio-pci", "0x15b3", "0x101e");
  AddVf("0000:3b:00.0", 1, "0000:3b:00.3");
  fs::create_directories(roots_.sysfs + "/kernel/iommu_groups/42");
  Link(PciDir("0000:3b:00.3") + "/iommu_group", "../../../kernel/iommu_groups/42");
  Write(roots_.devfs + "/vfio/42", "");
  Write(roots_.devfs + "/vfio/vfio", "");

  const auto reports = Collect();
  ASSERT_EQ(reports.size(), 3u);
  const DeviceReport* pf = Find(reports, "0000:3b:00.0");
  const DeviceReport* vf0 = Find(reports, "0000:3b:00.2");
  const DeviceReport* vf1 = Find(reports, "0000:3b:00.3");
  ASSERT_NE(pf, nullptr);
  ASSERT_NE(vf0, nullptr);
  ASSERT_NE(vf1, nullptr);

  EXPECT_EQ(Value(*pf, "devscope_device_sriov_info",
                  {{"role", "pf"}, {"physical_function", "0000:3b:00.0"}}),
            1);
  EXPECT_EQ(Value(*pf, "devscope_device_sriov_vfs", {}), 2);
  EXPECT_EQ(Value(*vf0, "devscope_device_sriov_info",
                  {{"role", "vf"}, {"physical_function", "0000:3b:00.0"}}),
            1);
  EXPECT_THAT(vf0->info.aliases, ElementsAre("ens1f0v0"));
  EXPECT_EQ(Value(*vf0, "devscope_device_network_receive_bytes_total", {{"interface", "ens1f0v0"}}),
            1000);

  // The VF without a netdev is still a device, used through its IOMMU group.
  EXPECT_THAT(vf1->info.aliases, IsEmpty());
  EXPECT_EQ(vf1->info.model, "0x101e");
  EXPECT_EQ(Value(*vf1, "devscope_device_sriov_info",
                  {{"role", "vf"}, {"physical_function", "0000:3b:00.0"}}),
            1);
  ASSERT_EQ(vf1->info.allocate.device_nodes.size(), 2u);
  // Host paths are the host's, whatever --path.devfs says: the kubelet resolves them on the host.
  EXPECT_EQ(vf1->info.allocate.device_nodes[0].host_path, "/dev/vfio/42");
  EXPECT_EQ(vf1->info.allocate.device_nodes[1].host_path, "/dev/vfio/vfio");
  EXPECT_EQ(vf1->info.allocate.device_nodes[0].container_path, "/dev/vfio/42");
  EXPECT_EQ(vf1->info.allocate.device_nodes[1].container_path, "/dev/vfio/vfio");
  EXPECT_TRUE(vf1->health.healthy);
  for (const DeviceReport& r : reports) EXPECT_FALSE(r.info.advertise) << r.info.id;
}

TEST_F(NetdevTest, NetworkFunctionsHeldByUserspaceDriversAreFoundOnTheBus) {
  AddFunction("0000:3b:00.0", "ice");  // the host's NIC
  AddNetdev("ens1f0", "0000:3b:00.0");
  // A PF given to DPDK (no netdev), with a VF of its own, and an IOMMU group for each.
  AddFunction("0000:5e:00.0", "vfio-pci", "0x8086", "0x1592");
  AddFunction("0000:5e:01.0", "vfio-pci", "0x8086", "0x1889");
  AddVf("0000:5e:00.0", 0, "0000:5e:01.0");
  AddFunction("0000:5e:00.1", "igb_uio", "0x8086", "0x1592");
  // Not network devices of interest: a GPU on vfio-pci, and a NIC that no driver holds.
  AddFunction("0000:af:00.0", "vfio-pci", "0x10de", "0x2330", "0x030200");
  AddFunction("0000:d8:00.0", "", "0x8086", "0x1592");
  fs::create_directories(roots_.sysfs + "/kernel/iommu_groups/61");
  Link(PciDir("0000:5e:00.0") + "/iommu_group", "../../../kernel/iommu_groups/61");
  Write(roots_.devfs + "/vfio/61", "");
  Write(roots_.devfs + "/vfio/vfio", "");

  const auto reports = Collect();
  std::vector<std::string> ids;
  for (const DeviceReport& r : reports) ids.push_back(r.info.id);
  EXPECT_THAT(ids, ElementsAre("0000:3b:00.0", "0000:5e:00.0", "0000:5e:00.1", "0000:5e:01.0"));
  const DeviceReport* dpdk = Find(reports, "0000:5e:00.0");
  ASSERT_NE(dpdk, nullptr);
  EXPECT_EQ(dpdk->info.vendor, "Intel");
  EXPECT_THAT(dpdk->info.aliases, IsEmpty());
  ASSERT_EQ(dpdk->info.allocate.device_nodes.size(), 2u);
  EXPECT_EQ(dpdk->info.allocate.device_nodes[0].container_path, "/dev/vfio/61");
  EXPECT_TRUE(dpdk->health.healthy);
  EXPECT_EQ(Value(*Find(reports, "0000:5e:01.0"), "devscope_device_sriov_info",
                  {{"role", "vf"}, {"physical_function", "0000:5e:00.0"}}),
            1);
}

TEST_F(NetdevTest, AdvertisesVfsOnlyWhenConfigured) {
  AddFunction("0000:3b:00.0", "ice");
  AddNetdev("eth0", "0000:3b:00.0");
  Write(PciDir("0000:3b:00.0") + "/sriov_totalvfs", "4\n");
  AddFunction("0000:3b:01.0", "vfio-pci");
  AddVf("0000:3b:00.0", 0, "0000:3b:01.0");
  options_.advertise_resource = "example.com/vf";
  const auto reports = Collect();
  ASSERT_EQ(reports.size(), 2u);
  const DeviceReport* pf = Find(reports, "0000:3b:00.0");
  const DeviceReport* vf = Find(reports, "0000:3b:01.0");
  ASSERT_NE(pf, nullptr);
  ASSERT_NE(vf, nullptr);
  EXPECT_FALSE(pf->info.advertise);
  EXPECT_TRUE(vf->info.advertise);
  EXPECT_EQ(vf->info.resource, "example.com/vf");
}

TEST_F(NetdevTest, VfioNodeMissingIsUnhealthy) {
  AddFunction("0000:3b:00.0", "ice");
  AddNetdev("eth0", "0000:3b:00.0");
  AddFunction("0000:3b:01.0", "vfio-pci");
  AddVf("0000:3b:00.0", 0, "0000:3b:01.0");
  Link(PciDir("0000:3b:01.0") + "/iommu_group", "../../../kernel/iommu_groups/7");
  Write(roots_.devfs + "/vfio/vfio", "");  // the container node is there, the group's is not
  auto reports = Collect();
  DeviceReport* vf = const_cast<DeviceReport*>(Find(reports, "0000:3b:01.0"));
  ASSERT_NE(vf, nullptr);
  // The collector reports what it saw; the health model (run by the runner) checks the nodes once,
  // under the devfs root.
  EXPECT_TRUE(vf->health.healthy);
  HealthModel(HealthOptions{}, roots_).Apply(*vf);
  EXPECT_FALSE(vf->health.healthy);
  EXPECT_EQ(vf->health.reason, "device node /dev/vfio/7 missing");
}

TEST_F(NetdevTest, VirtioNetdevMapsToItsPciParent) {
  const std::string pci = "0000:00:03.0";
  AddFunction(pci, "virtio-pci", "0x1af4", "0x1000");
  const std::string dir = PciDir(pci) + "/virtio0/net/eth0";
  Link(dir + "/device", "../../../virtio0");
  Link(roots_.sysfs + "/class/net/eth0", "../../devices/pci0000:00/" + pci + "/virtio0/net/eth0");
  Write(dir + "/operstate", "up\n");
  const auto reports = Collect();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].info.id, pci);
  EXPECT_EQ(reports[0].info.vendor, "Red Hat");
  EXPECT_THAT(reports[0].info.aliases, ElementsAre("eth0"));
}

TEST_F(NetdevTest, NoPhysicalNicIsNotFound) {
  AddVirtual("lo");
  AddVirtual("docker0");
  EXPECT_EQ(NewNetdevCollector(options_, roots_).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace devscope
