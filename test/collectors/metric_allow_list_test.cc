// The per-collector metric allow-list: parsing, the wrapped collector keeping only the listed
// samples (and the devices, their identity and health), and the registry applying it.
#include "collectors/metric_allow_list.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "collectors/devicedir.h"
#include "collectors/registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/support/temp_dir.h"

namespace devscope {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;

// Reports one device with three samples; counts DrainWatch calls.
class ThreeSamples : public Collector {
 public:
  absl::string_view name() const override { return "three"; }
  absl::StatusOr<std::vector<DeviceReport>> Collect() override {
    DeviceReport d;
    d.info.id = "d0";
    d.health.healthy = false;
    d.samples = {{.name = "devscope_device_power_watts", .value = 1},
                 {.name = "devscope_device_temperature_celsius", .value = 2},
                 {.name = "devscope_device_errors_total",
                  .kind = Sample::Kind::kCounter,
                  .labels = {{"kind", "ecc"}},
                  .value = 3}};
    return std::vector<DeviceReport>{d};
  }
  bool DrainWatch() override {
    ++drains;
    return true;
  }
  uint64_t parse_errors() const override { return 4; }
  int drains = 0;
};

std::vector<std::string> Names(const DeviceReport& d) {
  std::vector<std::string> names;
  for (const Sample& s : d.samples) names.push_back(s.name);
  return names;
}

TEST(MetricAllowListTest, ParsesCommaSeparatedDeviceMetricNames) {
  EXPECT_THAT(*ParseMetricAllowList(""), SizeIs(0));
  EXPECT_THAT(*ParseMetricAllowList(" devscope_device_power_watts , devscope_device_link_up,"),
              ElementsAre("devscope_device_power_watts", "devscope_device_link_up"));
  EXPECT_THAT(ParseMetricAllowList("node_load1").status().message(),
              HasSubstr("\"node_load1\" is not a device metric name"));
  EXPECT_FALSE(ParseMetricAllowList("devscope_device_a b").ok());
  EXPECT_FALSE(ParseMetricAllowList("devscope_device_{x}").ok());
}

TEST(MetricAllowListTest, KeepsOnlyTheListedSamplesAndEveryDevice) {
  auto inner = std::make_unique<ThreeSamples>();
  ThreeSamples* raw = inner.get();
  AllowListedCollector collector(std::move(inner),
                                 {"devscope_device_errors_total", "devscope_device_power_watts"});
  auto devices = collector.Collect();
  ASSERT_TRUE(devices.ok());
  ASSERT_THAT(*devices, SizeIs(1));
  EXPECT_EQ((*devices)[0].info.id, "d0");
  EXPECT_FALSE((*devices)[0].health.healthy);
  EXPECT_THAT(Names((*devices)[0]),
              ElementsAre("devscope_device_power_watts", "devscope_device_errors_total"));
  // Everything else is the inner collector's.
  EXPECT_EQ(collector.name(), "three");
  EXPECT_EQ(collector.parse_errors(), 4u);
  collector.DrainWatch();
  EXPECT_EQ(raw->drains, 1);
}

TEST(MetricAllowListTest, TheRegistryAppliesACollectorsList) {
  TempDir dir;
  WriteFile(absl::StrCat(dir.path(), "/w0/resource"), "example.com/widget\n");
  WriteFile(absl::StrCat(dir.path(), "/w0/metrics.prom"),
            "devscope_device_power_watts 10\ndevscope_device_link_up 1\n");
  CollectorSelection selection;
  selection.OptionsOf<DevicedirOptions>("devicedir")->path = dir.path();
  selection.Find("devicedir")->metrics = "devscope_device_link_up";
  for (CollectorChoice& choice : selection.choices()) {
    if (choice.spec->name() != "devicedir") choice.toggle = CollectorToggle::kOff;
  }
  auto collectors = MakeEnabledCollectors(selection, NodeRoots{});
  ASSERT_THAT(collectors, SizeIs(1));
  auto devices = collectors[0]->Collect();
  ASSERT_TRUE(devices.ok());
  ASSERT_THAT(*devices, SizeIs(1));
  EXPECT_THAT(Names((*devices)[0]), ElementsAre("devscope_device_link_up"));
}

}  // namespace
}  // namespace devscope
