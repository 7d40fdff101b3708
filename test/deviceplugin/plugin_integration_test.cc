// The device plugin against the registration stand-in, over real unix sockets, in-process: the
// test publishes DeviceSnapshot objects directly (no collector involved).
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "collectors/collector.h"
#include "common/clock.h"
#include "common/snapshot_store.h"
#include "demo/standin_registration.h"
#include "deviceplugin/plugin_manager.h"
#include "deviceplugin/plugin_options.h"
#include "deviceplugin/v1beta1/api.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "pluginregistration/v1/api.grpc.pb.h"
#include "prometheus/registry.h"
#include "test/support/metric_value.h"
#include "test/support/temp_dir.h"
#include "test/support/wait_for.h"

namespace devscope {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

constexpr char kWidget[] = "example.com/widget";
constexpr char kGadget[] = "example.com/gadget";
constexpr absl::Duration kWait = absl::Seconds(5);

DeviceReport Dev(const std::string& id, const std::string& resource, bool healthy = true,
                 std::optional<int64_t> numa = std::nullopt, AllocateSpec spec = {}) {
  DeviceReport report;
  report.info.id = id;
  report.info.resource = resource;
  report.info.advertise = true;
  report.info.numa_node = numa;
  report.info.allocate = std::move(spec);
  report.health.healthy = healthy;
  if (!healthy) report.health.reason = "test";
  return report;
}

class PluginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(dir_);
    options_.device_plugins_dir = dir_;
  }
  void TearDown() override {
    if (manager_) manager_->Stop();
    standin_.Stop();
    manager_.reset();
  }

  void Publish(std::vector<DeviceReport> devices) {
    auto snapshot = std::make_shared<DeviceSnapshot>();
    CollectorReport report;
    report.collector = "devicedir";
    report.up = true;
    report.time = absl::Now();
    report.devices = std::move(devices);
    snapshot->collectors.push_back(std::move(report));
    store_.Publish(std::move(snapshot));
  }

  void StartManager(DevicePluginManager::Backoff backoff = {}, Clock& clock = Clock::Real()) {
    manager_ = std::make_unique<DevicePluginManager>(options_, store_, registry_, backoff, clock);
    ASSERT_TRUE(manager_->Start().ok());
  }

  std::vector<RegistrationStandin::Registration> Accepted(const std::string& resource) {
    std::vector<RegistrationStandin::Registration> out;
    for (auto& r : standin_.Registrations()) {
      if (r.accepted && r.resource == resource) out.push_back(r);
    }
    return out;
  }

  bool WaitRegistered(const std::string& resource, size_t count = 1) {
    return WaitFor([&] { return Accepted(resource).size() >= count; });
  }

  std::unique_ptr<v1beta1::DevicePlugin::Stub> PluginStub(const std::string& resource) {
    return v1beta1::DevicePlugin::NewStub(grpc::CreateChannel(
        absl::StrCat("unix:", manager_->SocketPath(resource)), grpc::InsecureChannelCredentials()));
  }

  double Metric(const std::string& name, const std::map<std::string, std::string>& labels) {
    return MetricValue(registry_, name, labels).value_or(0);
  }

  TempDir temp_;
  const std::string root_ = temp_.path();
  const std::string dir_ = root_ + "/dp";
  PluginOptions options_;
  SnapshotStore<DeviceSnapshot> store_;
  prometheus::Registry registry_;
  RegistrationStandin standin_;
  std::unique_ptr<DevicePluginManager> manager_;
};

auto HealthIs(const std::string& id, const std::string& health) {
  return [id, health](const std::vector<v1beta1::Device>& devices) {
    for (const auto& d : devices) {
      if (d.id() == id) return d.health() == health;
    }
    return false;
  };
}

auto IdsAre(std::vector<std::string> ids) {
  return [ids](const std::vector<v1beta1::Device>& devices) {
    std::vector<std::string> have;
    for (const auto& d : devices) have.push_back(d.id());
    return have == ids;
  };
}

TEST_F(PluginTest, RegistersWithTheKubeletAndStreamsTopology) {
  ASSERT_TRUE(standin_.Start(dir_).ok());
  Publish({Dev("w0", kWidget, true, 0), Dev("w1", kWidget, true, 1), Dev("w2", kWidget)});
  StartManager();
  ASSERT_TRUE(WaitRegistered(kWidget));
  auto reg = Accepted(kWidget).front();
  EXPECT_EQ(reg.version, "v1beta1");
  EXPECT_EQ(reg.endpoint, "devscope-example.com_widget.sock");
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/" + reg.endpoint));
  EXPECT_TRUE(reg.options.get_preferred_allocation_available());
  EXPECT_FALSE(reg.options.pre_start_required());

  ASSERT_TRUE(standin_.WaitForDevices(kWidget, IdsAre({"w0", "w1", "w2"}), kWait));
  auto devices = standin_.Devices(kWidget);
  ASSERT_EQ(devices.size(), 3u);
  EXPECT_EQ(devices[0].health(), "Healthy");
  ASSERT_EQ(devices[0].topology().nodes_size(), 1);
  EXPECT_EQ(devices[0].topology().nodes(0).id(), 0);
  ASSERT_EQ(devices[1].topology().nodes_size(), 1);
  EXPECT_EQ(devices[1].topology().nodes(0).id(), 1);
  EXPECT_FALSE(devices[2].has_topology());  // no NUMA node reported

  EXPECT_TRUE(WaitFor([&] {
    return Metric("devscope_device_plugin_registered", {{"resource", kWidget}}) == 1;
  }));
  EXPECT_GE(Metric("devscope_device_plugin_registrations_total",
                   {{"resource", kWidget}, {"result", "success"}}),
            1);
}

TEST_F(PluginTest, InvalidResourceNamesAreNeverSent) {
  ASSERT_TRUE(standin_.Start(dir_).ok());
  Publish({Dev("a", "widget"), Dev("b", "kubernetes.io/widget"), Dev("c", "requests.x.com/w"),
           Dev("d", "example.com/-bad"), Dev("w0", kWidget)});
  StartManager();
  ASSERT_TRUE(WaitRegistered(kWidget));
  absl::SleepFor(absl::Milliseconds(200));  // time for any wrong registration to show up
  for (const auto& r : standin_.Registrations()) EXPECT_EQ(r.resource, kWidget);
  EXPECT_THAT(manager_->Resources(), ElementsAre(kWidget));
}

TEST_F(PluginTest, InvalidConfiguredResourceFailsStart) {
  options_.resources["kubernetes.io/widget"] = PluginResourceOptions{};
  DevicePluginManager manager(options_, store_, registry_);
  absl::Status status = manager.Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("kubernetes.io/widget"));
}

TEST_F(PluginTest, RefusedRegistrationIsRetriedWithBackoff) {
  ASSERT_TRUE(standin_.Start(dir_).ok());
  standin_.SetRefuse(true);
  Publish({Dev("w0", kWidget)});
  FakeClock clock;
  StartManager({}, clock);
  auto refused = [&] {
    size_t count = 0;
    for (auto& r : standin_.Registrations()) count += r.accepted ? 0 : 1;
    return count;
  };
  auto failures = [&] {
    return Metric("devscope_device_plugin_registrations_total",
                  {{"resource", kWidget}, {"result", "failure"}});
  };
  // 100 ms doubling: each retry comes one backoff after the failure before it, never sooner.
  absl::Duration backoff = absl::Milliseconds(100);
  for (size_t i = 1; i <= 4; ++i) {
    // The stand-in records a refusal before the plugin has read the answer and counted it; once
    // counted, the plugin has taken the time of its next attempt.
    ASSERT_TRUE(WaitFor([&] { return failures() >= i; })) << i;
    clock.Advance(backoff - absl::Milliseconds(1));
    absl::SleepFor(absl::Milliseconds(50));  // time for a premature retry to show up
    EXPECT_EQ(refused(), i) << i;
    clock.Advance(absl::Milliseconds(1));
    ASSERT_TRUE(WaitFor([&] { return refused() >= i + 1; })) << i;
    backoff *= 2;
  }
  EXPECT_EQ(Metric("devscope_device_plugin_registered", {{"resource", kWidget}}), 0);
  EXPECT_TRUE(WaitFor([&] { return failures() >= 5; }));
  standin_.SetRefuse(false);
  clock.Advance(backoff);
  ASSERT_TRUE(WaitRegistered(kWidget));
  EXPECT_TRUE(WaitFor([&] {
    return Metric("devscope_device_plugin_registered", {{"resource", kWidget}}) == 1;
  }));
  ASSERT_TRUE(standin_.WaitForDevices(kWidget, IdsAre({"w0"}), kWait));
}

TEST_F(PluginTest, HealthFlipReachesTheStreamWithinOneSecond) {
  ASSERT_TRUE(standin_.Start(dir_).ok());
  Publish({Dev("w0", kWidget), Dev("w1", kWidget)});
  StartManager();
  ASSERT_TRUE(standin_.WaitForDevices(kWidget, HealthIs("w1", "Healthy"), kWait));
  for (int round = 0; round < 3; ++round) {
    absl::Time t0 = absl::Now();
    Publish({Dev("w0", kWidget), Dev("w1", kWidget, false)});
    ASSERT_TRUE(standin_.WaitForDevices(kWidget, HealthIs("w1", "Unhealthy"), absl::Seconds(1)));
    absl::Duration down = absl::Now() - t0;
    t0 = absl::Now();
    Publish({Dev("w0", kWidget), Dev("w1", kWidget, true)});
    ASSERT_TRUE(standin_.WaitForDevices(kWidget, HealthIs("w1", "Healthy"), absl::Seconds(1)));
    absl::Duration up = absl::Now() - t0;
    std::printf("health propagation: to Unhealthy %s, to Healthy %s\n",
                absl::FormatDuration(down).c_str(), absl::FormatDuration(up).c_str());
  }
}

TEST_F(PluginTest, DevicesAppearAndDisappear) {
  ASSERT_TRUE(standin_.Start(dir_).ok());
  Publish({Dev("w0", kWidget), Dev("w1", kWidget)});
  StartManager();
  ASSERT_TRUE(standin_.WaitForDevices(kWidget, IdsAre({"w0", "w1"}), kWait));
  Publish({Dev("w0", kWidget), Dev("w1", kWidget), Dev("w10", kWidget), Dev("w2", kWidget)});
  ASSERT_TRUE(
      standin_.WaitForDevices(kWidget, IdsAre({"w0", "w1", "w2", "w10"}), absl::Seconds(1)));
  Publish({Dev("w2", kWidget)});
  ASSERT_TRUE(standin_.WaitForDevices(kWidget, IdsAre({"w2"}), absl::Seconds(1)));
  Publish({});  // every device gone: the resource streams an empty list, still registered
  ASSERT_TRUE(standin_.WaitForDevices(kWidget, IdsAre({}), absl::Seconds(1)));
  EXPECT_EQ(Accepted(kWidget).size(), 1u);
  Publish({Dev("w3", kWidget)});
  ASSERT_TRUE(standin_.WaitForDevices(kWidget, IdsAre({"w3"}), absl::Seconds(1)));
}

AllocateSpec FullSpec(const std::string& id) {
  AllocateSpec spec;
  spec.device_nodes.push_back({"/dev/" + id, "", ""});
  spec.device_nodes.push_back({"/dev/" + id + "-ctl", "/dev/ctl", "r"});
  spec.envs = {{"WIDGET_VISIBLE", id}, {"MODE", "fast"}};
  spec.mounts.push_back({"/opt/" + id, "/opt/widget-" + id, true});
  spec.mounts.push_back({"/opt/shared", "/shared", false});
  spec.annotations = {{"example.com/widget-" + id, "yes"}};
  spec.cdi_devices = {"example.com/widget=" + id, "example.com/widget=common"};
  return spec;
}

TEST_F(PluginTest, AllocateAnswersWhatTheDevicesDeclare) {
  ASSERT_TRUE(standin_.Start(dir_).ok());
  Publish(
      {Dev("w0", kWidget, true, 0, FullSpec("w0")), Dev("w1", kWidget, true, 0, FullSpec("w1"))});
  StartManager();
  ASSERT_TRUE(standin_.WaitForDevices(kWidget, IdsAre({"w0", "w1"}), kWait));

  // Through the stand-in's admission (GetPreferredAllocation, then Allocate).
  std::vector<std::string> ids;
  auto one = standin_.Admit(kWidget, 1, &ids);
  ASSERT_TRUE(one.ok()) << one.status();
  ASSERT_EQ(ids.size(), 1u);
  const std::string& id = ids[0];
  ASSERT_EQ(one->devices_size(), 2);
  EXPECT_EQ(one->devices(0).host_path(), "/dev/" + id);
  EXPECT_EQ(one->devices(0).container_path(), "/dev/" + id);  // defaults to the host path
  EXPECT_EQ(one->devices(0).permissions(), "rw");             // default
  EXPECT_EQ(one->devices(1).container_path(), "/dev/ctl");
  EXPECT_EQ(one->devices(1).permissions(), "r");
  EXPECT_EQ(one->envs().at("WIDGET_VISIBLE"), id);
  EXPECT_EQ(one->envs().at("MODE"), "fast");
  ASSERT_EQ(one->mounts_size(), 2);
  EXPECT_EQ(one->mounts(0).host_path(), "/opt/" + id);
  EXPECT_TRUE(one->mounts(0).read_only());
  EXPECT_FALSE(one->mounts(1).read_only());
  EXPECT_EQ(one->annotations().at("example.com/widget-" + id), "yes");
  ASSERT_EQ(one->cdi_devices_size(), 2);
  EXPECT_EQ(one->cdi_devices(0).name(), "example.com/widget=" + id);

  // The second device: the stand-in hands out only what is free.
  std::vector<std::string> second;
  ASSERT_TRUE(standin_.Admit(kWidget, 1, &second).ok());
  EXPECT_NE(second, ids);
  EXPECT_EQ(standin_.Admit(kWidget, 1, nullptr).status().code(),
            absl::StatusCode::kResourceExhausted);
  standin_.Release(ids);
  EXPECT_TRUE(standin_.Admit(kWidget, 1, nullptr).ok());

  // Two devices in one container: merged, de-duplicated by container path.
  auto stub = PluginStub(kWidget);
  v1beta1::AllocateRequest request;
  auto* container = request.add_container_requests();
  container->add_devices_ids("w0");
  container->add_devices_ids("w1");
  v1beta1::AllocateResponse response;
  grpc::ClientContext context;
  ASSERT_TRUE(stub->Allocate(&context, request, &response).ok());
  ASSERT_EQ(response.container_responses_size(), 1);
  const auto& both = response.container_responses(0);
  EXPECT_EQ(both.devices_size(), 3);  // /dev/w0, /dev/ctl (once), /dev/w1
  EXPECT_EQ(both.envs().at("WIDGET_VISIBLE"), "w0,w1");
  EXPECT_EQ(both.envs().at("MODE"), "fast");
  EXPECT_EQ(both.mounts_size(), 3);  // /shared once
  EXPECT_EQ(both.cdi_devices_size(), 3);
  EXPECT_GE(Metric("devscope_device_plugin_allocations_total",
                   {{"resource", kWidget}, {"result", "success"}}),
            4);
}

TEST_F(PluginTest, UnknownOrUnhealthyIdsFailTheWholeCall) {
  ASSERT_TRUE(standin_.Start(dir_).ok());
  Publish({Dev("w0", kWidget), Dev("w1", kWidget, false)});
  StartManager();
  ASSERT_TRUE(standin_.WaitForDevices(kWidget, IdsAre({"w0", "w1"}), kWait));
  // The refusal series exist at 0 before the first refusal, so increase() sees it.
  for (const char* result : {"success", "unknown_device", "unhealthy_device"}) {
    EXPECT_EQ(MetricValue(registry_, "devscope_device_plugin_allocations_total",
                          {{"resource", kWidget}, {"result", result}}),
              0)
        << result;
  }
  auto stub = PluginStub(kWidget);
  auto allocate = [&](std::vector<std::vector<std::string>> containers,
                      v1beta1::AllocateResponse* response) {
    v1beta1::AllocateRequest request;
    for (auto& ids : containers) {
      auto* c = request.add_container_requests();
      for (auto& id : ids) c->add_devices_ids(id);
    }
    grpc::ClientContext context;
    return stub->Allocate(&context, request, response);
  };
  v1beta1::AllocateResponse response;
  grpc::Status status = allocate({{"w0", "nope"}}, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("\"nope\""));
  EXPECT_EQ(response.container_responses_size(), 0);

  response.Clear();
  status = allocate({{"w0"}, {"w1"}}, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("\"w1\""));
  EXPECT_EQ(response.container_responses_size(), 0);

  EXPECT_EQ(Metric("devscope_device_plugin_allocations_total",
                   {{"resource", kWidget}, {"result", "unknown_device"}}),
            1);
  EXPECT_EQ(Metric("devscope_device_plugin_allocations_total",
                   {{"resource", kWidget}, {"result", "unhealthy_device"}}),
            1);
  EXPECT_EQ(Metric("devscope_device_plugin_allocations_total",
                   {{"resource", kWidget}, {"result", "success"}}),
            0);
  // The stand-in never hands out the unhealthy device.
  std::vector<std::string> ids;
  ASSERT_TRUE(standin_.Admit(kWidget, 1, &ids).ok());
  EXPECT_THAT(ids, ElementsAre("w0"));
  EXPECT_EQ(standin_.Admit(kWidget, 1, &ids).status().code(), absl::StatusCode::kResourceExhausted);
}

TEST_F(PluginTest, PreferredAllocationPackVersusSpread) {
  options_.resources[kWidget].allocation_policy = AllocationPolicy::kPack;
  options_.resources[kGadget].allocation_policy = AllocationPolicy::kSpread;
  ASSERT_TRUE(standin_.Start(dir_).ok());
  std::vector<DeviceReport> devices;
  // NUMA 0: 4 devices, NUMA 1: 2 devices, for both resources.
  for (const char* resource : {kWidget, kGadget}) {
    std::string p = resource == std::string(kWidget) ? "w" : "g";
    for (int i = 0; i < 6; ++i)
      devices.push_back(Dev(p + std::to_string(i), resource, true, i < 4 ? 0 : 1));
  }
  Publish(devices);
  StartManager();
  ASSERT_TRUE(WaitRegistered(kWidget) && WaitRegistered(kGadget));
  auto preferred = [&](const std::string& resource, std::vector<std::string> available,
                       std::vector<std::string> must, int size) {
    v1beta1::PreferredAllocationRequest request;
    auto* c = request.add_container_requests();
    for (auto& id : available) c->add_available_deviceids(id);
    for (auto& id : must) c->add_must_include_deviceids(id);
    c->set_allocation_size(size);
    v1beta1::PreferredAllocationResponse response;
    grpc::ClientContext context;
    EXPECT_TRUE(PluginStub(resource)->GetPreferredAllocation(&context, request, &response).ok());
    std::vector<std::string> ids(response.container_responses(0).deviceids().begin(),
                                 response.container_responses(0).deviceids().end());
    return ids;
  };
  EXPECT_THAT(preferred(kWidget, {"w0", "w1", "w2", "w3", "w4", "w5"}, {}, 2),
              ElementsAre("w4", "w5"));  // pack: the fuller node 1
  EXPECT_THAT(preferred(kGadget, {"g0", "g1", "g2", "g3", "g4", "g5"}, {}, 2),
              ElementsAre("g0", "g1"));  // spread: the emptier node 0
  // Must-include and NUMA: g4 on node 1 pulls g5 before anything on node 0.
  EXPECT_THAT(preferred(kGadget, {"g0", "g1", "g2", "g3", "g4", "g5"}, {"g4"}, 2),
              ElementsAre("g4", "g5"));
  // Three fit only node 0.
  EXPECT_THAT(preferred(kWidget, {"w0", "w1", "w2", "w3", "w4", "w5"}, {}, 3),
              ElementsAre("w0", "w1", "w2"));
  auto pack_many = preferred(kWidget, {"w0", "w1", "w2", "w3", "w4", "w5"}, {"w0"}, 5);
  EXPECT_EQ(pack_many.size(), 5u);
  EXPECT_EQ(pack_many.front(), "w0");
}

TEST_F(PluginTest, KubeletRestartReRegistersWithinOneSecond) {
  ASSERT_TRUE(standin_.Start(dir_).ok());
  // The checkpoint file survives a kubelet restart.
  {
    std::FILE* f = std::fopen((dir_ + "/kubelet_internal_checkpoint").c_str(), "w");
    std::fclose(f);
  }
  Publish({Dev("w0", kWidget, true, 0)});
  StartManager();
  ASSERT_TRUE(WaitRegistered(kWidget));
  ASSERT_TRUE(standin_.WaitForDevices(kWidget, HealthIs("w0", "Healthy"), kWait));
  for (int round = 1; round <= 3; ++round) {
    absl::Time t0 = absl::Now();
    ASSERT_TRUE(standin_.Restart().ok());
    // The first registration the restarted kubelet accepted (one restart can be noticed twice,
    // the socket removed and the stream closed, so counting registrations would not do).
    auto first_after = [&]() -> std::optional<absl::Time> {
      for (const auto& r : Accepted(kWidget)) {
        if (r.time >= t0) return r.time;
      }
      return std::nullopt;
    };
    ASSERT_TRUE(WaitFor([&] { return first_after().has_value(); }));
    absl::Duration took = *first_after() - t0;
    std::printf("re-registration after kubelet restart: %s\n", absl::FormatDuration(took).c_str());
    EXPECT_LT(took, absl::Seconds(1));
    EXPECT_TRUE(std::filesystem::exists(dir_ + "/kubelet_internal_checkpoint"));
    EXPECT_TRUE(std::filesystem::exists(manager_->SocketPath(kWidget)));
    ASSERT_TRUE(standin_.WaitForDevices(kWidget, HealthIs("w0", "Healthy"), absl::Seconds(1)));
  }
  EXPECT_TRUE(WaitFor([&] {
    return Metric("devscope_device_plugin_registered", {{"resource", kWidget}}) == 1;
  }));
}

TEST_F(PluginTest, KubeletGoneMidStreamThenBack) {
  ASSERT_TRUE(standin_.Start(dir_).ok());
  Publish({Dev("w0", kWidget)});
  FakeClock clock;
  StartManager({}, clock);
  ASSERT_TRUE(WaitRegistered(kWidget));
  ASSERT_TRUE(standin_.WaitForDevices(kWidget, HealthIs("w0", "Healthy"), kWait));
  standin_.Stop();
  // The stand-in (like the kubelet) marks a broken stream's devices unhealthy.
  EXPECT_TRUE(standin_.WaitForDevices(kWidget, HealthIs("w0", "Unhealthy"), absl::Seconds(1)));
  EXPECT_TRUE(WaitFor([&] {
    return Metric("devscope_device_plugin_registered", {{"resource", kWidget}}) == 0;
  }));
  clock.Advance(absl::Milliseconds(500));
  auto failures = [&] {
    return Metric("devscope_device_plugin_registrations_total",
                  {{"resource", kWidget}, {"result", "failure"}});
  };
  EXPECT_TRUE(WaitFor([&] { return failures() >= 1; }));
  absl::SleepFor(absl::Milliseconds(200));  // time for a spin to show
  EXPECT_GE(failures(), 1);
  EXPECT_LE(failures(), 5);  // backoff, not a spin
  absl::Time t0 = absl::Now();
  ASSERT_TRUE(standin_.Start(dir_).ok());
  // kubelet.sock can appear a moment before the stand-in listens on it, and a Register in that
  // moment is retried after a backoff: from here the clock runs, ten times faster than real time
  // at least (on a loaded machine a poll takes more than its 5 ms).
  ASSERT_TRUE(WaitFor([&] {
    clock.Advance(absl::Milliseconds(50));
    return Accepted(kWidget).size() >= 2;
  }));
  EXPECT_LT(Accepted(kWidget).back().time - t0, absl::Seconds(1));
  EXPECT_TRUE(standin_.WaitForDevices(kWidget, HealthIs("w0", "Healthy"), absl::Seconds(1)));
}

TEST_F(PluginTest, KubeletStreamBreakIsNoticedBesideOtherClientsStreams) {
  ASSERT_TRUE(standin_.Start(dir_).ok());
  Publish({Dev("w0", kWidget)});
  StartManager();
  ASSERT_TRUE(WaitRegistered(kWidget));
  ASSERT_TRUE(standin_.WaitForDevices(kWidget, HealthIs("w0", "Healthy"), kWait));
  // Another client (a debugging tool, say) watches too and stays.
  auto stub = PluginStub(kWidget);
  grpc::ClientContext context;
  auto reader = stub->ListAndWatch(&context, v1beta1::Empty());
  v1beta1::ListAndWatchResponse response;
  ASSERT_TRUE(reader->Read(&response));
  // The kubelet's own stream fails while the kubelet stays up: its devices turn unhealthy there
  // until devscope registers again, which it must do although a stream is still open.
  standin_.DropWatch(kWidget);
  ASSERT_TRUE(standin_.WaitForDevices(kWidget, HealthIs("w0", "Unhealthy"), absl::Seconds(1)));
  ASSERT_TRUE(WaitRegistered(kWidget, 2));
  EXPECT_TRUE(standin_.WaitForDevices(kWidget, HealthIs("w0", "Healthy"), absl::Seconds(2)));
  context.TryCancel();
  reader->Finish();
}

TEST_F(PluginTest, TwoResourcesAtOnce) {
  ASSERT_TRUE(standin_.Start(dir_).ok());
  Publish({Dev("w0", kWidget), Dev("g0", kGadget), Dev("g1", kGadget, false)});
  StartManager();
  ASSERT_TRUE(WaitRegistered(kWidget) && WaitRegistered(kGadget));
  EXPECT_NE(Accepted(kWidget)[0].endpoint, Accepted(kGadget)[0].endpoint);
  ASSERT_TRUE(standin_.WaitForDevices(kWidget, IdsAre({"w0"}), kWait));
  ASSERT_TRUE(standin_.WaitForDevices(kGadget, IdsAre({"g0", "g1"}), kWait));
  EXPECT_TRUE(standin_.WaitForDevices(kGadget, HealthIs("g1", "Unhealthy"), kWait));
  // A third resource appearing later gets its own server then.
  Publish({Dev("w0", kWidget), Dev("g0", kGadget), Dev("t0", "example.com/thing")});
  ASSERT_TRUE(WaitRegistered("example.com/thing"));
  ASSERT_TRUE(standin_.WaitForDevices(kGadget, IdsAre({"g0"}), kWait));
  EXPECT_THAT(manager_->Resources(), UnorderedElementsAre(kWidget, kGadget, "example.com/thing"));
}

TEST_F(PluginTest, KubeletAbsentAtStartAppearsLater) {
  Publish({Dev("w0", kWidget)});
  StartManager();
  EXPECT_TRUE(WaitFor([&] {
    return Metric("devscope_device_plugin_registrations_total",
                  {{"resource", kWidget}, {"result", "failure"}}) >= 2;
  }));
  absl::Time t0 = absl::Now();
  ASSERT_TRUE(standin_.Start(dir_).ok());
  ASSERT_TRUE(WaitRegistered(kWidget));
  absl::Duration took = Accepted(kWidget).back().time - t0;
  std::printf("registration after the kubelet appeared: %s\n", absl::FormatDuration(took).c_str());
  EXPECT_LT(took, absl::Seconds(1));
  ASSERT_TRUE(standin_.WaitForDevices(kWidget, IdsAre({"w0"}), kWait));
}

TEST_F(PluginTest, ManyConcurrentStreamsAreFreedWhenClosed) {
  ASSERT_TRUE(standin_.Start(dir_).ok());
  Publish({Dev("w0", kWidget)});
  StartManager();
  ASSERT_TRUE(standin_.WaitForDevices(kWidget, IdsAre({"w0"}), kWait));
  ASSERT_TRUE(WaitFor([&] { return manager_->LiveStreams() == 1; }));  // the stand-in's
  constexpr int kStreams = 64;
  auto stub = PluginStub(kWidget);
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<v1beta1::ListAndWatchResponse>>> readers;
  for (int i = 0; i < kStreams; ++i) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    readers.push_back(stub->ListAndWatch(contexts.back().get(), v1beta1::Empty()));
  }
  v1beta1::ListAndWatchResponse response;
  for (auto& reader : readers) {
    ASSERT_TRUE(reader->Read(&response));
    EXPECT_EQ(response.devices_size(), 1);
  }
  EXPECT_TRUE(WaitFor([&] { return manager_->LiveStreams() == kStreams + 1; }));
  // Every stream gets the change.
  Publish({Dev("w0", kWidget), Dev("w1", kWidget)});
  for (auto& reader : readers) {
    ASSERT_TRUE(reader->Read(&response));
    EXPECT_EQ(response.devices_size(), 2);
  }
  // Half close while idle, half while an update is pending for them.
  for (int i = 0; i < kStreams / 2; ++i) contexts[i]->TryCancel();
  Publish({Dev("w1", kWidget)});
  for (int i = kStreams / 2; i < kStreams; ++i) contexts[i]->TryCancel();
  for (auto& reader : readers) reader->Finish();
  EXPECT_TRUE(WaitFor([&] { return manager_->LiveStreams() == 1; })) << manager_->LiveStreams();
  // The kubelet's stream was untouched and still follows.
  EXPECT_TRUE(standin_.WaitForDevices(kWidget, IdsAre({"w1"}), absl::Seconds(1)));
  EXPECT_EQ(Accepted(kWidget).size(), 1u);
}

TEST_F(PluginTest, PreStartContainerOnlyWhenConfigured) {
  options_.resources[kGadget].pre_start_container = true;
  ASSERT_TRUE(standin_.Start(dir_).ok());
  Publish({Dev("w0", kWidget), Dev("g0", kGadget)});
  StartManager();
  ASSERT_TRUE(WaitRegistered(kWidget) && WaitRegistered(kGadget));
  EXPECT_FALSE(Accepted(kWidget)[0].options.pre_start_required());
  EXPECT_TRUE(Accepted(kGadget)[0].options.pre_start_required());
  ASSERT_TRUE(standin_.WaitForDevices(kGadget, IdsAre({"g0"}), kWait));
  EXPECT_TRUE(standin_.Admit(kGadget, 1, nullptr).ok());  // calls PreStartContainer
}

TEST_F(PluginTest, PluginWatcherRoute) {
  options_.plugins_registry_dir = root_ + "/reg";
  Publish({Dev("w0", kWidget, true, 1)});
  StartManager();
  std::string registry_socket = options_.plugins_registry_dir + "/devscope-example.com_widget.sock";
  ASSERT_TRUE(WaitFor([&] { return std::filesystem::exists(registry_socket); }));
  auto registration = pluginregistration::Registration::NewStub(
      grpc::CreateChannel("unix:" + registry_socket, grpc::InsecureChannelCredentials()));
  pluginregistration::PluginInfo info;
  {
    // The socket file appears at bind(), a moment before listen(): the kubelet's plugin watcher
    // dials it blocking, with a timeout, and so does this.
    grpc::ClientContext context;
    context.set_wait_for_ready(true);
    context.set_deadline(absl::ToChronoTime(absl::Now() + kWait));
    ASSERT_TRUE(registration->GetInfo(&context, pluginregistration::InfoRequest(), &info).ok());
  }
  EXPECT_EQ(info.type(), "DevicePlugin");
  EXPECT_EQ(info.name(), kWidget);
  EXPECT_EQ(info.endpoint(), manager_->SocketPath(kWidget));
  EXPECT_EQ(info.endpoint().front(), '/');
  EXPECT_THAT(info.supported_versions(), ElementsAre("v1beta1"));
  // The watcher dials the endpoint as given.
  auto plugin = v1beta1::DevicePlugin::NewStub(
      grpc::CreateChannel("unix:" + info.endpoint(), grpc::InsecureChannelCredentials()));
  {
    grpc::ClientContext context;
    v1beta1::DevicePluginOptions options;
    ASSERT_TRUE(plugin->GetDevicePluginOptions(&context, v1beta1::Empty(), &options).ok());
    EXPECT_TRUE(options.get_preferred_allocation_available());
  }
  EXPECT_EQ(Metric("devscope_device_plugin_registered", {{"resource", kWidget}}), 0);
  {
    grpc::ClientContext context;
    pluginregistration::RegistrationStatus status;
    status.set_plugin_registered(true);
    pluginregistration::RegistrationStatusResponse response;
    ASSERT_TRUE(registration->NotifyRegistrationStatus(&context, status, &response).ok());
  }
  EXPECT_EQ(Metric("devscope_device_plugin_registered", {{"resource", kWidget}}), 1);
  EXPECT_EQ(Metric("devscope_device_plugin_registrations_total",
                   {{"resource", kWidget}, {"result", "success"}}),
            1);
  // No Register was attempted on kubelet.sock.
  EXPECT_EQ(Metric("devscope_device_plugin_registrations_total",
                   {{"resource", kWidget}, {"result", "failure"}}),
            0);
}

}  // namespace
}  // namespace devscope
