// The renderer on hand-built snapshots: every pod-resources family with the right labels, holder
// labels on telemetry, vanishing series, caching by snapshot identity, and promtool-clean text.
#include "exporter/metrics_renderer.h"

#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/integration/devscope_process.h"

namespace devscope {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::shared_ptr<PodResourcesSnapshot> TwoPods() {
  auto s = std::make_shared<PodResourcesSnapshot>();
  PodResources trainer{.ns = "ml", .name = "trainer-0"};
  trainer.containers.push_back({.name = "log-shipper"});  // a sidecar with nothing
  trainer.containers.push_back(
      {.name = "trainer",
       .devices = {{.resource = "example.com/widget", .device_ids = {"widget-0", "widget-1"},
                    .numa_nodes = {0}}},
       .exclusive_cpus = {2, 3, 4, 5, 9},
       .memory = {{.memory_type = "hugepages-1Gi", .size_bytes = 1ULL << 30, .numa_nodes = {0}}},
       .claim_devices = {{.claim_namespace = "ml", .claim_name = "gpu-claim",
                          .driver = "gpu.example.com", .pool = "node-a", .device = "gpu-3",
                          .share_id = "7"}}});
  PodResources shared{.ns = "video", .name = "transcoder"};
  // One device held by two containers (time-sliced), and a device with no topology.
  shared.containers.push_back({.name = "a",
                               .devices = {{.resource = "example.com/widget",
                                            .device_ids = {"widget-2"}}}});
  shared.containers.push_back({.name = "b",
                               .devices = {{.resource = "example.com/widget",
                                            .device_ids = {"widget-2"}}}});
  s->pods = {trainer, shared};
  s->allocatable = AllocatableResources{
      .devices = {{.resource = "example.com/widget",
                   .device_ids = {"widget-0", "widget-1"}, .numa_nodes = {0}},
                  {.resource = "example.com/widget", .device_ids = {"widget-2", "widget-3"},
                   .numa_nodes = {1}}},
      .cpus = {2, 3, 4, 5, 6, 7, 8, 9},
      .memory = {{.memory_type = "memory", .size_bytes = 1000, .numa_nodes = {0}},
                 {.memory_type = "memory", .size_bytes = 500, .numa_nodes = {0}}}};
  return s;
}

std::shared_ptr<DeviceSnapshot> Widgets() {
  auto s = std::make_shared<DeviceSnapshot>();
  CollectorReport report{.collector = "devicedir", .up = true, .duration = absl::Milliseconds(3)};
  for (int i = 0; i < 4; ++i) {
    DeviceReport d;
    d.info.id = "widget-" + std::to_string(i);
    d.info.resource = "example.com/widget";
    d.info.advertise = true;
    d.info.vendor = "Example";
    d.info.model = "W1";
    d.info.numa_node = i / 2;
    d.health.healthy = i != 3;
    d.samples.push_back({.name = "devscope_device_temperature_celsius", .value = 40.0 + i});
    d.samples.push_back({.name = "devscope_device_errors_total",
                         .kind = Sample::Kind::kCounter,
                         .labels = {{"kind", "correctable"}},
                         .value = 2});
    report.devices.push_back(std::move(d));
  }
  s->collectors.push_back(std::move(report));
  return s;
}

class MetricsRendererTest : public ::testing::Test {
 protected:
  std::string Render() {
    std::string text = *renderer_.Render();
    EXPECT_EQ(PromtoolCheck(text), "") << text;
    return text;
  }

  SnapshotStore<PodResourcesSnapshot> pods_;
  SnapshotStore<DeviceSnapshot> devices_;
  MetricsRenderer renderer_{&pods_, &devices_, {}};
};

TEST_F(MetricsRendererTest, NothingYetIsStillValid) {
  const std::string text = Render();
  EXPECT_THAT(text, Not(HasSubstr("devscope_container_device_info")));
}

TEST_F(MetricsRendererTest, PodResourcesView) {
  pods_.Publish(TwoPods());
  const std::string text = Render();
  EXPECT_THAT(text, HasSubstr(R"(devscope_container_device_info{namespace="ml",pod="trainer-0",container="trainer",resource="example.com/widget",device="widget-1",numa_node="0"} 1)"));
  EXPECT_THAT(text, HasSubstr(R"(devscope_container_device_info{namespace="video",pod="transcoder",container="a",resource="example.com/widget",device="widget-2",numa_node=""} 1)"));
  EXPECT_THAT(text, HasSubstr(R"(devscope_container_device_info{namespace="video",pod="transcoder",container="b",resource="example.com/widget",device="widget-2",numa_node=""} 1)"));
  EXPECT_THAT(text, HasSubstr(R"(devscope_container_exclusive_cpus{namespace="ml",pod="trainer-0",container="trainer",cpus="2-5,9"} 5)"));
  EXPECT_THAT(text, HasSubstr(R"(devscope_container_memory_bytes{namespace="ml",pod="trainer-0",container="trainer",memory_type="hugepages-1Gi",numa_node="0"} 1073741824)"));
  EXPECT_THAT(text, HasSubstr(R"(devscope_container_dynamic_resource_info{namespace="ml",pod="trainer-0",container="trainer",claim_namespace="ml",claim_name="gpu-claim",driver="gpu.example.com",pool="node-a",device="gpu-3",share_id="7"} 1)"));
  EXPECT_THAT(text, HasSubstr(R"(devscope_node_allocatable_devices{resource="example.com/widget"} 4)"));
  // widget-2 is held twice but is one device.
  EXPECT_THAT(text, HasSubstr(R"(devscope_node_allocated_devices{resource="example.com/widget"} 3)"));
  EXPECT_THAT(text, HasSubstr("devscope_node_allocatable_cpus 8"));
  EXPECT_THAT(text, HasSubstr("devscope_node_allocated_exclusive_cpus 5"));
  EXPECT_THAT(text, HasSubstr(R"(devscope_node_allocatable_memory_bytes{memory_type="memory",numa_node="0"} 1500)"));
  EXPECT_THAT(text, HasSubstr("devscope_pod_resources_pods 2"));
  // The sidecar holds nothing and gets no series.
  EXPECT_THAT(text, Not(HasSubstr("log-shipper")));
}

TEST_F(MetricsRendererTest, TelemetryCarriesEveryHolder) {
  pods_.Publish(TwoPods());
  devices_.Publish(Widgets());
  const std::string text = Render();
  EXPECT_THAT(text, HasSubstr(R"(devscope_device_info{resource="example.com/widget",device="widget-0",collector="devicedir",vendor="Example",model="W1",numa_node="0",pci_address=""} 1)"));
  EXPECT_THAT(text, HasSubstr(R"(devscope_device_temperature_celsius{resource="example.com/widget",device="widget-2",namespace="video",pod="transcoder",container="a"} 42)"));
  EXPECT_THAT(text, HasSubstr(R"(devscope_device_temperature_celsius{resource="example.com/widget",device="widget-2",namespace="video",pod="transcoder",container="b"} 42)"));
  // Free devices: no holder labels.
  EXPECT_THAT(text, HasSubstr(R"(devscope_device_temperature_celsius{resource="example.com/widget",device="widget-3"} 43)"));
  EXPECT_THAT(text, HasSubstr(R"(devscope_device_healthy{resource="example.com/widget",device="widget-3"} 0)"));
  EXPECT_THAT(text, HasSubstr(R"(devscope_device_errors_total{resource="example.com/widget",device="widget-0",namespace="ml",pod="trainer-0",container="trainer",kind="correctable"} 2)"));
  EXPECT_THAT(text, HasSubstr("# TYPE devscope_device_errors_total counter"));
  EXPECT_THAT(text, HasSubstr(R"(devscope_collector_up{collector="devicedir"} 1)"));
}

TEST_F(MetricsRendererTest, SeriesOfGonePodsVanish) {
  pods_.Publish(TwoPods());
  devices_.Publish(Widgets());
  ASSERT_THAT(Render(), HasSubstr("pod=\"transcoder\""));
  auto fewer = std::make_shared<PodResourcesSnapshot>(*TwoPods());
  fewer->pods.pop_back();
  pods_.Publish(fewer);
  const std::string text = Render();
  EXPECT_THAT(text, Not(HasSubstr("transcoder")));
  EXPECT_THAT(text, HasSubstr(R"(devscope_device_temperature_celsius{resource="example.com/widget",device="widget-2"} 42)"));
}

TEST_F(MetricsRendererTest, CachedUntilASnapshotChanges) {
  pods_.Publish(TwoPods());
  auto first = renderer_.Render();
  auto second = renderer_.Render();
  EXPECT_EQ(*first, *second);
  pods_.Publish(std::make_shared<PodResourcesSnapshot>());
  EXPECT_NE(*renderer_.Render(), *first);
}

TEST_F(MetricsRendererTest, BadSamplesAreDroppedNotServed) {
  auto devices = Widgets();
  DeviceReport& d = devices->collectors[0].devices[0];
  // A sample that tries to set a holder label itself, one outside the device namespace, and a
  // name reported with a second type.
  d.samples.push_back({.name = "devscope_device_power_watts", .labels = {{"pod", "fake"}},
                       .value = 1});
  d.samples.push_back({.name = "node_load1", .value = 1});
  d.samples.push_back({.name = "devscope_device_temperature_celsius",
                       .kind = Sample::Kind::kCounter, .value = 1});
  devices_.Publish(devices);
  const std::string text = Render();
  EXPECT_THAT(text, Not(HasSubstr("fake")));
  EXPECT_THAT(text, Not(HasSubstr("node_load1")));
  EXPECT_THAT(text, HasSubstr("# TYPE devscope_device_temperature_celsius gauge"));
}

}  // namespace
}  // namespace devscope
