// DRA devices in the join: each driver's naming convention, devicedir aliases, configured alias
// rules, identifiers in names, and what no rule matches (exporter/dra_match.h).
#include <memory>
#include <string>
#include <vector>

#include "exporter/dra_match.h"
#include "exporter/join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace devscope {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr char kGpuUuid[] = "GPU-8c4b5e7a-1111-2222-3333-444455556666";

DeviceReport Gpu(const std::string& id, std::optional<uint32_t> minor,
                 std::optional<DeviceInfo::MigPlacement> mig = std::nullopt,
                 std::vector<std::string> aliases = {}) {
  DeviceReport report;
  report.info.id = id;
  report.info.vendor = "NVIDIA";
  report.info.resource = "nvidia.com/gpu";
  report.info.minor = minor;
  report.info.mig = mig;
  report.info.aliases = std::move(aliases);
  return report;
}

DeviceReport Other(const std::string& id, std::vector<std::string> aliases = {},
                   const std::string& pci = "") {
  DeviceReport report;
  report.info.id = id;
  report.info.resource = "example.com/widget";
  report.info.aliases = std::move(aliases);
  report.info.pci_address = pci;
  return report;
}

std::shared_ptr<const DeviceSnapshot> Devices(std::vector<DeviceReport> devices) {
  auto snapshot = std::make_shared<DeviceSnapshot>();
  CollectorReport report;
  report.collector = "test";
  report.up = true;
  report.devices = std::move(devices);
  snapshot->collectors.push_back(std::move(report));
  return snapshot;
}

ClaimDevice Claim(const std::string& driver, const std::string& device,
                  std::vector<std::string> cdi = {}, const std::string& claim = "claim") {
  ClaimDevice c;
  c.claim_namespace = "ns";
  c.claim_name = claim;
  c.driver = driver;
  c.pool = "node-a";
  c.device = device;
  c.cdi_devices = std::move(cdi);
  return c;
}

// Pod "ns/p", container "c", holding `claims`.
std::shared_ptr<const PodResourcesSnapshot> Claiming(std::vector<ClaimDevice> claims) {
  auto snapshot = std::make_shared<PodResourcesSnapshot>();
  PodResources pod{"ns", "p", {}, {}, {}};
  ContainerResources container;
  container.name = "c";
  container.claim_devices = std::move(claims);
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

Holder ClaimHolder(const char* claim = "claim") { return Holder{"ns", "p", "c", "ns", claim}; }

TEST(DraJoinTest, NvidiaNamesGpusByMinorAndMigDevicesByProfileAndPlacement) {
  const DeviceInfo::MigPlacement placement{19, 4, 1};
  auto devices = Devices({Gpu("GPU-a", 0), Gpu("GPU-b", 1), Gpu("MIG-b1", 1, placement),
                          Gpu("MIG-b2", std::nullopt)});  // a MIG device NVML gave no placement
  auto view = Join(Claiming({Claim("gpu.nvidia.com", "gpu-1"),
                             Claim("gpu.nvidia.com", "gpu-1-mig-19-4-1", {}, "mig")}),
                   devices);
  EXPECT_THAT(Find(*view, "GPU-b").holders, ElementsAre(ClaimHolder()));
  EXPECT_THAT(Find(*view, "MIG-b1").holders, ElementsAre(ClaimHolder("mig")));
  EXPECT_THAT(Find(*view, "GPU-a").holders, IsEmpty());
  EXPECT_THAT(Find(*view, "MIG-b2").holders, IsEmpty());
  EXPECT_THAT(view->unmatched_claim_devices, IsEmpty());

  // Another placement, or a minor no GPU has, is not guessed at.
  view = Join(
      Claiming({Claim("gpu.nvidia.com", "gpu-1-mig-19-5-1"), Claim("gpu.nvidia.com", "gpu-7")}),
      devices);
  for (const JoinedDevice& d : view->devices) EXPECT_THAT(d.holders, IsEmpty());
  ASSERT_THAT(view->unmatched_claim_devices, SizeIs(2));
  EXPECT_EQ(view->unmatched_claim_devices[1]->device, "gpu-7");
}

TEST(DraJoinTest, ADeviceNameOfOneDriverIsNotAnotherDriversDevice) {
  // "gpu-0" of the example driver is no NVIDIA GPU, and no device whose ID is "gpu-0".
  auto view = Join(Claiming({Claim("gpu.example.com", "gpu-0")}),
                   Devices({Gpu("GPU-a", 0), Other("gpu-0")}));
  for (const JoinedDevice& d : view->devices) EXPECT_THAT(d.holders, IsEmpty());
  EXPECT_THAT(view->unmatched_claim_devices, SizeIs(1));
}

TEST(DraJoinTest, IntelNamesGpusByPciAddressOrCard) {
  auto devices = Devices({Other("0000:03:00.0", {"card1"}, "0000:03:00.0"),
                          Other("0000:00:02.0", {"card0"}, "0000:00:02.0")});
  auto view = Join(Claiming({Claim("gpu.intel.com", "0000-03-00-0-0x56a0")}), devices);
  EXPECT_THAT(Find(*view, "0000:03:00.0").holders, ElementsAre(ClaimHolder()));
  EXPECT_THAT(Find(*view, "0000:00:02.0").holders, IsEmpty());

  view = Join(Claiming({Claim("gpu.intel.com", "card0")}), devices);
  EXPECT_THAT(Find(*view, "0000:00:02.0").holders, ElementsAre(ClaimHolder()));
  EXPECT_THAT(Find(*view, "0000:03:00.0").holders, IsEmpty());
}

TEST(DraJoinTest, AliasesNameDraDevicesWithTheirDriver) {
  // A devicedir `info` file's `aliases=gpu.example.com/gpu-0`, and one with the pool.
  auto devices = Devices({Other("widget-0", {"gpu.example.com/gpu-0"}),
                          Other("widget-1", {"gpu.example.com/node-a/gpu-1"}),
                          Other("widget-2", {"gpu.example.com/node-b/gpu-2"})});
  auto view = Join(Claiming({Claim("gpu.example.com", "gpu-0"), Claim("gpu.example.com", "gpu-1"),
                             Claim("gpu.example.com", "gpu-2")}),
                   devices);
  EXPECT_THAT(Find(*view, "widget-0").holders, ElementsAre(ClaimHolder()));
  EXPECT_THAT(Find(*view, "widget-1").holders, ElementsAre(ClaimHolder()));
  EXPECT_THAT(Find(*view, "widget-2").holders, IsEmpty());  // another pool's gpu-2
  ASSERT_THAT(view->unmatched_claim_devices, SizeIs(1));
}

TEST(DraJoinTest, UuidsAndPciAddressesInNamesIdentifyTheDevice) {
  auto devices =
      Devices({Gpu("GPU-a", 0, std::nullopt, {kGpuUuid}), Other("nic", {}, "0000:3b:00.2")});
  // A CDI device name carrying the UUID, in another case.
  auto view = Join(Claiming({Claim("vendor.example/gpu", "first",
                                   {"vendor.example/gpu=gpu-8C4B5E7A-1111-2222-3333-444455556666"}),
                             Claim("net.example.com", "0000:3b:00.2")}),
                   devices);
  EXPECT_THAT(Find(*view, "GPU-a").holders, ElementsAre(ClaimHolder()));
  EXPECT_THAT(Find(*view, "nic").holders, ElementsAre(ClaimHolder()));
}

TEST(DraJoinTest, ConfiguredRulesComeFirst) {
  DraOptions options;
  options.rules["dra.net"] = {"nic-(\\w+)", "\\1"};
  options.rules["gpu.nvidia.com"] = {"gpu-(\\d+)", "GPU-b"};  // overrides the minor convention
  auto dra = DraMatcher::Create(options);
  ASSERT_TRUE(dra.ok()) << dra.status();
  auto devices = Devices({Other("0000:3b:00.2", {"ens1f0"}), Gpu("GPU-a", 0), Gpu("GPU-b", 1)});
  auto view = Join(Claiming({Claim("dra.net", "nic-ens1f0"), Claim("gpu.nvidia.com", "gpu-0")}),
                   devices, dra->get());
  EXPECT_THAT(Find(*view, "0000:3b:00.2").holders, ElementsAre(ClaimHolder()));
  EXPECT_THAT(Find(*view, "GPU-b").holders, ElementsAre(ClaimHolder()));
  EXPECT_THAT(Find(*view, "GPU-a").holders, IsEmpty());
  // A rule whose ID names nothing leaves the other ways open.
  options.rules["gpu.nvidia.com"] = {"gpu-(\\d+)", "nothing-\\1"};
  dra = DraMatcher::Create(options);
  ASSERT_TRUE(dra.ok());
  view = Join(Claiming({Claim("gpu.nvidia.com", "gpu-0")}), devices, dra->get());
  EXPECT_THAT(Find(*view, "GPU-a").holders, ElementsAre(ClaimHolder()));
}

TEST(DraJoinTest, BadRulesAreRefusedWithTheDriversName) {
  DraOptions options;
  options.rules["dra.net"] = {"nic-(", "\\1"};
  auto dra = DraMatcher::Create(options);
  ASSERT_FALSE(dra.ok());
  EXPECT_THAT(dra.status().message(), ::testing::HasSubstr("dra.net"));
  options.rules["dra.net"] = {"nic-(\\w+)", "\\2"};
  EXPECT_FALSE(DraMatcher::Create(options).ok());
  options.rules["dra.net"] = {"nic-(\\w+)", ""};
  EXPECT_FALSE(DraMatcher::Create(options).ok());
}

TEST(DraJoinTest, PluginAndClaimHoldersTogetherAndSharesOnce) {
  auto pods = std::make_shared<PodResourcesSnapshot>();
  PodResources pod{"ns", "p", {}, {}, {}};
  ContainerResources container;
  container.name = "c";
  container.devices.push_back({"nvidia.com/gpu", {"GPU-a"}, {}});
  // Two shares of one device in one claim are one holder.
  ClaimDevice share = Claim("gpu.nvidia.com", "gpu-0");
  share.share_id = "1";
  container.claim_devices.push_back(share);
  share.share_id = "2";
  container.claim_devices.push_back(share);
  pod.containers.push_back(container);
  pods->pods.push_back(pod);
  auto view = Join(pods, Devices({Gpu("GPU-a", 0)}));
  EXPECT_THAT(Find(*view, "GPU-a").holders, ElementsAre(Holder{"ns", "p", "c"}, ClaimHolder()));
}

TEST(DraMatchTest, Candidates) {
  auto dra = DraMatcher::Create({});
  ASSERT_TRUE(dra.ok());
  EXPECT_THAT(
      (*dra)->Candidates(Claim("gpu.example.com", "gpu-0", {"k8s.gpu.example.com/gpu=gpu-0"})),
      ElementsAre("gpu.example.com/node-a/gpu-0", "gpu.example.com/gpu-0"));
  EXPECT_THAT(IdentifierCandidates(Claim("x", "MIG-GPU-8c4b5e7a-1111-2222-3333-444455556666/1/0")),
              SizeIs(1));
  EXPECT_THAT(IdentifierCandidates(Claim("x", "MIG-GPU-8c4b5e7a-1111-2222-3333-444455556666/1")),
              IsEmpty());
  EXPECT_THAT(IdentifierCandidates(Claim("x", "a1-8c4b5e7a-1111-2222-3333-444455556666")),
              IsEmpty());
  EXPECT_THAT(IdentifierCandidates(Claim("x", "3b:00.1")), ElementsAre("3b:00.1"));
  EXPECT_THAT(ConventionCandidates(Claim("gpu.intel.com", "0000-3b-00-1")),
              ElementsAre("0000:3b:00.1"));
  EXPECT_THAT(ConventionCandidates(Claim("gpu.intel.com", "0000-3b-00-1-56a0")), IsEmpty());
  EXPECT_THAT(ConventionCandidates(Claim("gpu.intel.com", "cardx")), IsEmpty());
  EXPECT_THAT(ConventionCandidates(Claim("other.com", "card0")), IsEmpty());
  DeviceReport gpu = Gpu("GPU-a", 3);
  EXPECT_THAT(DraNamesOf(gpu.info), ElementsAre("gpu.nvidia.com/gpu-3"));
  gpu.info.vendor = "AMD";
  EXPECT_THAT(DraNamesOf(gpu.info), IsEmpty());
}

}  // namespace
}  // namespace devscope
