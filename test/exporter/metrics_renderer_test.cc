// The renderer on hand-built snapshots: every pod-resources family with the right labels, holder
// labels on telemetry, vanishing series, caching by snapshot identity, and promtool-clean text.
#include "exporter/metrics_renderer.h"

#include <zlib.h>

#include <memory>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"

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

TEST_F(MetricsRendererTest, DraHoldersNameTheirClaimAndUnmatchedDevicesAreCounted) {
  pods_.Publish(TwoPods());
  devices_.Publish(Widgets());
  std::string text = Render();
  // gpu.example.com/gpu-3 names no tracked device yet.
  EXPECT_THAT(text, HasSubstr(R"(devscope_dynamic_resource_unmatched_devices{driver="gpu.example.com"} 1)"));
  EXPECT_THAT(text, Not(HasSubstr("claim_name=\"gpu-claim\"}")));

  auto widgets = Widgets();
  widgets->collectors[0].devices[3].info.aliases.push_back("gpu.example.com/gpu-3");
  devices_.Publish(widgets);
  text = Render();
  EXPECT_THAT(text, HasSubstr(R"(devscope_device_temperature_celsius{resource="example.com/widget",device="widget-3",namespace="ml",pod="trainer-0",container="trainer",claim_namespace="ml",claim_name="gpu-claim"} 43)"));
  EXPECT_THAT(text, HasSubstr(R"(devscope_device_healthy{resource="example.com/widget",device="widget-3",namespace="ml",pod="trainer-0",container="trainer",claim_namespace="ml",claim_name="gpu-claim"} 0)"));
  EXPECT_THAT(text, Not(HasSubstr("devscope_dynamic_resource_unmatched_devices")));
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

TEST_F(MetricsRendererTest, ADeviceListedTwiceIsWrittenOnce) {
  auto devices = Widgets();
  CollectorReport copy = devices->collectors[0];
  copy.collector = "other";
  devices->collectors.push_back(copy);
  devices_.Publish(devices);
  const std::string text = Render();  // promtool: no duplicate series
  EXPECT_THAT(text, HasSubstr(R"(collector="devicedir")"));
  EXPECT_THAT(text, Not(HasSubstr(R"(devscope_device_info{resource="example.com/widget",device="widget-0",collector="other")")));
  EXPECT_THAT(text, HasSubstr(R"(devscope_collector_up{collector="other"} 1)"));
}

TEST_F(MetricsRendererTest, SamplesWithNamesPrometheusRefusesAreDropped) {
  auto devices = Widgets();
  DeviceReport& d = devices->collectors[0].devices[0];
  d.samples.push_back({.name = "devscope_device_bad-name", .value = 1});
  d.samples.push_back({.name = "devscope_device_odd_label", .labels = {{"__x", "1"}}, .value = 1});
  d.samples.push_back({.name = "devscope_device_odd_label", .labels = {{"a-b", "1"}}, .value = 1});
  d.samples.push_back({.name = "devscope_device_twice", .labels = {{"k", "v"}}, .value = 1});
  d.samples.push_back({.name = "devscope_device_twice", .labels = {{"k", "v"}}, .value = 2});
  d.info.model = "bad \xff model \"quoted\"";
  devices_.Publish(devices);
  const std::string text = Render();  // promtool passes
  EXPECT_THAT(text, Not(HasSubstr("bad-name")));
  EXPECT_THAT(text, Not(HasSubstr("devscope_device_odd_label")));
  EXPECT_THAT(text, HasSubstr(R"(,k="v"} 1)"));
  EXPECT_THAT(text, Not(HasSubstr(R"(,k="v"} 2)")));
  EXPECT_THAT(text, HasSubstr("model=\"bad \xEF\xBF\xBD model \\\"quoted\\\"\""));
}

TEST_F(MetricsRendererTest, WithoutHolderLabelsEachDeviceHasOneSetOfSeries) {
  SnapshotStore<PodResourcesSnapshot> pods;
  SnapshotStore<DeviceSnapshot> devices;
  pods.Publish(TwoPods());
  devices.Publish(Widgets());
  MetricsRenderer renderer(&pods, &devices, {}, nullptr, nullptr,
                           MetricsOptions{.holder_labels = false});
  const std::string text = *renderer.Render();
  EXPECT_EQ(PromtoolCheck(text), "") << text;
  // widget-2 is held by two containers: one series, no holder labels.
  EXPECT_THAT(text, HasSubstr(R"(devscope_device_temperature_celsius{resource="example.com/widget",device="widget-2"} 42)"));
  EXPECT_THAT(text, HasSubstr(R"(devscope_device_healthy{resource="example.com/widget",device="widget-0"} 1)"));
  EXPECT_THAT(text, Not(HasSubstr(R"(devscope_device_temperature_celsius{resource="example.com/widget",device="widget-2",namespace)")));
  EXPECT_THAT(text, Not(HasSubstr(R"(devscope_device_healthy{resource="example.com/widget",device="widget-0",namespace)")));
  // Who holds what is still said once, by the pod-resources view.
  EXPECT_THAT(text, HasSubstr(R"(devscope_container_device_info{namespace="video",pod="transcoder",container="b",resource="example.com/widget",device="widget-2",numa_node=""} 1)"));
}

// A node big enough for several blocks of devices: `devices` devices with four samples each, the
// first `held` held by one pod each.
std::shared_ptr<DeviceSnapshot> ManyDevices(int devices, double temperature = 50) {
  auto s = std::make_shared<DeviceSnapshot>();
  CollectorReport report{.collector = "devicedir", .up = true};
  for (int i = 0; i < devices; ++i) {
    DeviceReport d;
    d.info.id = absl::StrCat("dev-", i);
    d.info.resource = "example.com/dev";
    d.info.numa_node = i % 4;
    d.samples.push_back({.name = "devscope_device_temperature_celsius", .value = temperature});
    d.samples.push_back({.name = "devscope_device_power_watts", .value = 100.5 + i});
    d.samples.push_back({.name = "devscope_device_energy_joules_total",
                         .kind = Sample::Kind::kCounter, .value = 1e6 + i});
    d.samples.push_back({.name = "devscope_device_errors_total", .kind = Sample::Kind::kCounter,
                         .labels = {{"kind", "corrected"}}, .value = 3});
    report.devices.push_back(std::move(d));
  }
  s->collectors.push_back(std::move(report));
  return s;
}

std::shared_ptr<PodResourcesSnapshot> PodsHolding(int pods, int first_device = 0) {
  auto s = std::make_shared<PodResourcesSnapshot>();
  for (int p = 0; p < pods; ++p) {
    PodResources pod{.ns = "bulk", .name = absl::StrCat("pod-", p)};
    pod.containers.push_back(
        {.name = "main",
         .devices = {{.resource = "example.com/dev",
                      .device_ids = {absl::StrCat("dev-", first_device + p)},
                      .numa_nodes = {(first_device + p) % 4}}}});
    s->pods.push_back(std::move(pod));
  }
  return s;
}

std::string Gunzip(const std::string& data) {
  z_stream stream{};
  inflateInit2(&stream, 15 + 16);
  std::string out(8 << 20, '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream.avail_in = static_cast<uInt>(data.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  const bool whole = inflate(&stream, Z_FINISH) == Z_STREAM_END;
  out.resize(stream.total_out);
  inflateEnd(&stream);
  return whole ? out : "(not a whole, valid gzip member)";
}

// What a scrape that asks for gzip gets, inflated.
std::string GzipScrape(const Exposition& parts) {
  const GzipPrefix& prefix = parts.stable->Gzip();
  return Gunzip(prefix.bytes + GzipEnd(prefix, parts.fresh));
}

TEST_F(MetricsRendererTest, ATelemetryChangeRendersAndCompressesOnlyTheTelemetryItTouches) {
  pods_.Publish(PodsHolding(300));
  devices_.Publish(ManyDevices(1024));
  const Exposition before = renderer_.RenderParts();
  before.stable->Gzip();
  // One device's temperature changes: the same collector report otherwise.
  auto changed = std::make_shared<DeviceSnapshot>(*devices_.Current());
  changed->collectors[0].devices[700].samples[0].value = 99;
  devices_.Publish(changed);
  const Exposition after = renderer_.RenderParts();
  const std::string& text = after.stable->text();
  EXPECT_THAT(text, HasSubstr(R"(devscope_device_temperature_celsius{resource="example.com/dev",device="dev-700"} 99)"));
  EXPECT_EQ(GzipScrape(after), text + after.fresh);
  // The pod-resources view is copied, not rendered; the device view is rendered (a new device
  // snapshot), but only one piece of it compressed: the temperature of dev-700's block (and the
  // collector status, which is small).
  const uint64_t rendered = text.size() - after.stable->bytes_copied();
  EXPECT_LT(rendered, text.size()) << "the pod-resources view should be copied";
  EXPECT_GT(after.stable->bytes_compressed(), 0u);
  EXPECT_LT(after.stable->bytes_compressed(), 64 * 200 + 1000) << "one block's piece";
  EXPECT_EQ(PromtoolCheck(text), "");
}

TEST_F(MetricsRendererTest, APodChangeRendersOnlyThePodViewAndTheBlocksWhoseHoldersChanged) {
  pods_.Publish(PodsHolding(300));
  devices_.Publish(ManyDevices(1024));
  const Exposition before = renderer_.RenderParts();
  before.stable->Gzip();
  // A new pod takes dev-900 (a free device until now).
  auto more = std::make_shared<PodResourcesSnapshot>(*pods_.Current());
  more->pods.push_back(PodsHolding(1, 900)->pods[0]);
  more->pods.back().name = "newcomer";
  pods_.Publish(more);
  const Exposition after = renderer_.RenderParts();
  const std::string& text = after.stable->text();
  EXPECT_THAT(text, HasSubstr(R"(devscope_device_power_watts{resource="example.com/dev",device="dev-900",namespace="bulk",pod="newcomer",container="main"} 1000.5)"));
  EXPECT_THAT(text, Not(HasSubstr(R"(devscope_device_power_watts{resource="example.com/dev",device="dev-900"} )")));
  EXPECT_EQ(GzipScrape(after), text + after.fresh);
  // Rendered: the pod-resources view (about 300 series) and dev-900's block in the device
  // families that carry holder labels (5 of them, 64 devices each); the rest is copied.
  const size_t pod_view = text.find("# HELP devscope_device_info");
  ASSERT_NE(pod_view, std::string::npos);
  const uint64_t rendered = text.size() - after.stable->bytes_copied();
  EXPECT_LT(rendered, pod_view + 6 * 64 * 200);
  // Compressed: of the pod-resources view, only the piece the new pod falls in (pieces hold about
  // 16 of the 301 pods) and the counts.
  EXPECT_LT(after.stable->bytes_compressed(), pod_view / 4 + 6 * 64 * 200);
  EXPECT_EQ(PromtoolCheck(text), "");
}

// The incremental text is byte for byte what a renderer with no history makes, through a random
// walk of changes of every kind.
TEST_F(MetricsRendererTest, IncrementalTextEqualsAFreshRenderAfterEveryChange) {
  std::mt19937 random(7);
  auto devices = ManyDevices(200);
  auto pods = PodsHolding(150);
  for (int step = 0; step < 60; ++step) {
    switch (random() % 6) {
      case 0: {  // telemetry moves
        devices = std::make_shared<DeviceSnapshot>(*devices);
        devices->collectors[0].devices[random() % 200].samples[1].value = random() % 1000;
        break;
      }
      case 1: {  // a pod arrives holding a random device (maybe shared)
        pods = std::make_shared<PodResourcesSnapshot>(*pods);
        pods->pods.push_back(PodsHolding(1, random() % 200)->pods[0]);
        pods->pods.back().name = absl::StrCat("p", step);
        break;
      }
      case 2: {  // a pod leaves
        pods = std::make_shared<PodResourcesSnapshot>(*pods);
        if (!pods->pods.empty()) pods->pods.erase(pods->pods.begin() + random() % pods->pods.size());
        break;
      }
      case 3: {  // a device vanishes or one appears
        devices = std::make_shared<DeviceSnapshot>(*devices);
        auto& list = devices->collectors[0].devices;
        if (random() % 2 && list.size() > 1) {
          list.erase(list.begin() + random() % list.size());
        } else {
          list.push_back(ManyDevices(1)->collectors[0].devices[0]);
          list.back().info.id = absl::StrCat("new-", step);
        }
        break;
      }
      case 4: {  // a new telemetry family on one device
        devices = std::make_shared<DeviceSnapshot>(*devices);
        devices->collectors[0].devices[0].samples.push_back(
            {.name = absl::StrCat("devscope_device_extra", step), .value = 1});
        break;
      }
      default:  // both change
        devices = std::make_shared<DeviceSnapshot>(*devices);
        pods = std::make_shared<PodResourcesSnapshot>(*pods);
        break;
    }
    pods_.Publish(pods);
    devices_.Publish(devices);
    const Exposition incremental = renderer_.RenderParts();
    SnapshotStore<PodResourcesSnapshot> fresh_pods;
    SnapshotStore<DeviceSnapshot> fresh_devices;
    fresh_pods.Publish(pods);
    fresh_devices.Publish(devices);
    MetricsRenderer fresh(&fresh_pods, &fresh_devices, {});
    ASSERT_EQ(incremental.stable->text(), fresh.RenderParts().stable->text()) << "step " << step;
    ASSERT_EQ(GzipScrape(incremental), incremental.stable->text()) << "step " << step;
  }
  EXPECT_EQ(PromtoolCheck(renderer_.RenderParts().stable->text()), "");
}

}  // namespace
}  // namespace devscope
