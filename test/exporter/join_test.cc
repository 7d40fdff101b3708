#include "exporter/join.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace devscope {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

DeviceReport Device(const std::string& id, const std::string& resource,
                    std::vector<std::string> aliases = {}, const std::string& pci = "") {
  DeviceReport report;
  report.info.id = id;
  report.info.resource = resource;
  report.info.aliases = std::move(aliases);
  report.info.pci_address = pci;
  return report;
}

std::shared_ptr<const DeviceSnapshot> Devices(const std::string& collector,
                                              std::vector<DeviceReport> devices) {
  auto snapshot = std::make_shared<DeviceSnapshot>();
  CollectorReport report;
  report.collector = collector;
  report.up = true;
  report.devices = std::move(devices);
  snapshot->collectors.push_back(std::move(report));
  return snapshot;
}

// One pod "ns/p" with one container "c" holding `ids` under `resource`.
std::shared_ptr<const PodResourcesSnapshot> Holding(const std::string& resource,
                                                    std::vector<std::string> ids) {
  auto snapshot = std::make_shared<PodResourcesSnapshot>();
  PodResources pod{"ns", "p", {}, {}, {}};
  ContainerResources container;
  container.name = "c";
  container.devices.push_back({resource, std::move(ids), {}});
  pod.containers.push_back(std::move(container));
  snapshot->pods.push_back(std::move(pod));
  return snapshot;
}

const JoinedDevice& Find(const NodeView& view, const std::string& id) {
  for (const JoinedDevice& d : view.devices) {
    if (d.report->info.id == id) return d;
  }
  static const JoinedDevice kNone;
  ADD_FAILURE() << "no device " << id;
  return kNone;
}

const Holder kHolder{"ns", "p", "c"};

TEST(JoinTest, NullInputsAreEmpty) {
  auto view = Join(nullptr, nullptr);
  ASSERT_NE(view, nullptr);
  EXPECT_NE(view->pods, nullptr);
  EXPECT_NE(view->devices_source, nullptr);
  EXPECT_THAT(view->devices, IsEmpty());

  view = Join(nullptr, Devices("devicedir", {Device("w0", "example.com/widget")}));
  ASSERT_THAT(view->devices, SizeIs(1));
  EXPECT_THAT(view->devices[0].holders, IsEmpty());
  EXPECT_EQ(view->devices[0].collector, "devicedir");
  EXPECT_EQ(view->devices[0].resource, "example.com/widget");

  view = Join(Holding("example.com/widget", {"w0"}), nullptr);
  EXPECT_THAT(view->devices, IsEmpty());
}

TEST(JoinTest, MatchesById) {
  auto view = Join(Holding("example.com/widget", {"w0", "unknown"}),
                   Devices("devicedir", {Device("w0", "example.com/widget"),
                                         Device("w1", "example.com/widget")}));
  EXPECT_THAT(Find(*view, "w0").holders, ElementsAre(kHolder));
  EXPECT_THAT(Find(*view, "w1").holders, IsEmpty());
}

TEST(JoinTest, MatchesGpuUuidAndMigUuidAliases) {
  auto devices = Devices(
      "nvml", {Device("gpu0", "", {"GPU-8c4b5e7a-1111-2222-3333-444455556666"}, "0000:3b:00.0"),
               Device("gpu0-mig1", "", {"MIG-1f2e3d4c-aaaa-bbbb-cccc-ddddeeeeffff"})});
  auto view =
      Join(Holding("nvidia.com/gpu", {"GPU-8c4b5e7a-1111-2222-3333-444455556666"}), devices);
  EXPECT_THAT(Find(*view, "gpu0").holders, ElementsAre(kHolder));
  EXPECT_EQ(Find(*view, "gpu0").resource, "nvidia.com/gpu");  // from pod-resources
  EXPECT_THAT(Find(*view, "gpu0-mig1").holders, IsEmpty());

  view = Join(Holding("nvidia.com/mig-1g.10gb", {"MIG-1f2e3d4c-aaaa-bbbb-cccc-ddddeeeeffff"}),
              devices);
  EXPECT_THAT(Find(*view, "gpu0-mig1").holders, ElementsAre(kHolder));
  EXPECT_EQ(Find(*view, "gpu0-mig1").resource, "nvidia.com/mig-1g.10gb");
  EXPECT_THAT(Find(*view, "gpu0").holders, IsEmpty());
}

TEST(JoinTest, MatchesPciAddressInEveryForm) {
  auto devices = Devices("netdev", {Device("eth0v1", "", {}, "0000:3b:00.1")});
  for (const std::string id :
       {"0000:3b:00.1", "0000:3B:00.1", "3b:00.1", "3B:00.1", "00000000:3B:00.1"}) {
    auto view = Join(Holding("intel.com/sriov", {id}), devices);
    EXPECT_THAT(Find(*view, "eth0v1").holders, ElementsAre(kHolder)) << id;
  }
  auto view = Join(Holding("intel.com/sriov", {"3b:00.2"}), devices);
  EXPECT_THAT(Find(*view, "eth0v1").holders, IsEmpty());
  // A PCI address given as an alias in short form also matches the full form.
  view = Join(Holding("x/y", {"0000:5e:00.0"}),
              Devices("devicedir", {Device("w0", "x/y", {"5E:00.0"})}));
  EXPECT_THAT(Find(*view, "w0").holders, ElementsAre(kHolder));
  EXPECT_EQ(CanonicalDeviceId("3B:00.0"), "0000:3b:00.0");
  EXPECT_EQ(CanonicalDeviceId("00000000:3B:00.0"), "0000:3b:00.0");
  EXPECT_EQ(CanonicalDeviceId("GPU-ABC"), "gpu-abc");
}

TEST(JoinTest, MatchesCardNAndNetdevNames) {
  auto devices = Devices("drm", {Device("0000:03:00.0", "", {"card1"}, "0000:03:00.0")});
  auto view = Join(Holding("amd.com/gpu", {"card1"}), devices);
  EXPECT_THAT(Find(*view, "0000:03:00.0").holders, ElementsAre(kHolder));

  auto nics = Devices("netdev", {Device("0000:3b:00.2", "", {"ens1f0v0"}, "0000:3b:00.2")});
  view = Join(Holding("openshift.io/sriov", {"ens1f0v0"}), nics);
  EXPECT_THAT(Find(*view, "0000:3b:00.2").holders, ElementsAre(kHolder));
}

TEST(JoinTest, SharedDevicesGetEveryHolder) {
  auto devices = Devices("nvml", {Device("gpu0", "", {"GPU-aaaa"})});
  auto pods = std::make_shared<PodResourcesSnapshot>();
  for (int i = 0; i < 3; ++i) {
    PodResources pod{"ns", absl::StrCat("p", i), {}, {}, {}};
    ContainerResources c;
    c.name = "main";
    // NVIDIA time-slicing replicas.
    c.devices.push_back({"nvidia.com/gpu", {absl::StrCat("GPU-aaaa::", i)}, {}});
    pod.containers.push_back(c);
    pods->pods.push_back(pod);
  }
  // One container holding two replicas of the same GPU is one holder.
  ContainerResources twice;
  twice.name = "twice";
  twice.devices.push_back({"nvidia.com/gpu", {"GPU-aaaa::7", "GPU-aaaa::8"}, {}});
  pods->pods[0].containers.push_back(twice);
  auto view = Join(pods, devices);
  EXPECT_THAT(Find(*view, "gpu0").holders,
              ElementsAre(Holder{"ns", "p0", "main"}, Holder{"ns", "p0", "twice"},
                          Holder{"ns", "p1", "main"}, Holder{"ns", "p2", "main"}));
  EXPECT_EQ(Find(*view, "gpu0").resource, "nvidia.com/gpu");
}

TEST(JoinTest, IntelSharedCardForm) {
  auto devices = Devices("drm", {Device("0000:00:02.0", "", {"card0"}, "0000:00:02.0")});
  auto pods = std::make_shared<PodResourcesSnapshot>();
  pods->pods.push_back(
      {"ns", "a", {{"c", {{"gpu.intel.com/i915", {"card0-0"}, {}}}, {}, {}, {}}}, {}, {}});
  pods->pods.push_back(
      {"ns", "b", {{"c", {{"gpu.intel.com/i915", {"card0-1"}, {}}}, {}, {}, {}}}, {}, {}});
  pods->pods.push_back(
      {"ns", "z", {{"c", {{"gpu.intel.com/i915", {"card9-1"}, {}}}, {}, {}, {}}}, {}, {}});
  auto view = Join(pods, devices);
  EXPECT_THAT(Find(*view, "0000:00:02.0").holders,
              ElementsAre(Holder{"ns", "a", "c"}, Holder{"ns", "b", "c"}));
}

TEST(JoinTest, ResourceLabelPrefersOwnThenAllocatedThenAllocatable) {
  auto devices = Devices("mixed", {Device("own", "example.com/own"), Device("alloc", ""),
                                   Device("free", ""), Device("untracked", "")});
  auto pods = std::make_shared<PodResourcesSnapshot>();
  pods->pods.push_back(
      {"ns", "p", {{"c", {{"vendor.com/a", {"alloc", "own"}, {}}}, {}, {}, {}}}, {}, {}});
  AllocatableResources allocatable;
  allocatable.devices.push_back({"vendor.com/b", {"alloc", "free", "own"}, {}});
  pods->allocatable = allocatable;
  auto view = Join(pods, devices);
  EXPECT_EQ(Find(*view, "own").resource, "example.com/own");
  EXPECT_EQ(Find(*view, "alloc").resource, "vendor.com/a");
  EXPECT_EQ(Find(*view, "free").resource, "vendor.com/b");
  EXPECT_EQ(Find(*view, "untracked").resource, "");
  EXPECT_THAT(Find(*view, "free").holders, IsEmpty());
}

TEST(JoinTest, ReportsPointIntoTheKeptSnapshot) {
  auto devices = Devices("devicedir", {Device("w0", "x/y")});
  const DeviceReport* original = &devices->collectors[0].devices[0];
  auto view = Join(nullptr, devices);
  devices.reset();
  EXPECT_EQ(view->devices[0].report, original);
  EXPECT_EQ(view->devices[0].report->info.id, "w0");
}

TEST(JoinTest, JoinsAtScale) {
  // 1,024 devices, 250 pods x 4 containers x 4 devices (some devices shared).
  std::vector<DeviceReport> reports;
  for (int i = 0; i < 1024; ++i) {
    reports.push_back(
        Device(absl::StrCat("w", i), "example.com/widget", {absl::StrCat("UUID-", i)}));
  }
  auto devices = Devices("devicedir", std::move(reports));
  auto pods = std::make_shared<PodResourcesSnapshot>();
  for (int p = 0; p < 250; ++p) {
    PodResources pod{"ns", absl::StrCat("p", p), {}, {}, {}};
    for (int c = 0; c < 4; ++c) {
      ContainerResources container;
      container.name = absl::StrCat("c", c);
      std::vector<std::string> ids;
      for (int d = 0; d < 4; ++d) {
        const int n = (p * 16 + c * 4 + d) % 1024;
        ids.push_back(d % 2 == 0 ? absl::StrCat("w", n) : absl::StrCat("uuid-", n, "::", d));
      }
      container.devices.push_back({"example.com/widget", ids, {}});
      pod.containers.push_back(container);
    }
    pods->pods.push_back(pod);
  }
  const absl::Time start = absl::Now();
  auto view = Join(pods, devices);
  const absl::Duration took = absl::Now() - start;
  ASSERT_THAT(view->devices, SizeIs(1024));
  size_t holders = 0;
  for (const JoinedDevice& d : view->devices) holders += d.holders.size();
  EXPECT_EQ(holders, 4000u);
  // Device 0 is held by container 0 of pods 0, 64, 128 and 192 (the IDs wrap around).
  EXPECT_THAT(Find(*view, "w0").holders,
              ElementsAre(Holder{"ns", "p0", "c0"}, Holder{"ns", "p64", "c0"},
                          Holder{"ns", "p128", "c0"}, Holder{"ns", "p192", "c0"}));
  EXPECT_LT(took, absl::Milliseconds(500)) << "join is not cheap: " << took;
  std::printf("join of 1024 devices x 4000 pod-resources IDs took %s\n",
              absl::FormatDuration(took).c_str());
}

}  // namespace
}  // namespace devscope
