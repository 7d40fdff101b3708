#include "collectors/health.h"

#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/support/temp_dir.h"

namespace devscope {
namespace {

using ::testing::HasSubstr;

class HealthTest : public ::testing::Test {
 protected:
  HealthTest() {
    roots_.devfs = absl::StrCat(root_, "/dev");
    std::filesystem::create_directories(absl::StrCat(roots_.devfs, "/dri"));
    std::ofstream(absl::StrCat(roots_.devfs, "/dri/card0")) << "";
  }

  static Sample Temperature(double value) {
    return {"devscope_device_temperature_celsius", Sample::Kind::kGauge, {}, value, ""};
  }

  HealthVerdict DecideHealth(const DeviceReport& report) const {
    return HealthModel(options_, roots_).Decide(report);
  }

  TempDir dir_;
  const std::string root_ = dir_.path();
  HealthOptions options_;
  NodeRoots roots_;
};

TEST_F(HealthTest, HealthyByDefault) {
  DeviceReport report;
  EXPECT_EQ(DecideHealth(report), (HealthVerdict{true, ""}));
}

TEST_F(HealthTest, CollectorSignalIsKept) {
  DeviceReport report;
  report.health = {false, "xid 79"};
  EXPECT_EQ(DecideHealth(report), (HealthVerdict{false, "xid 79"}));
  report.health = {false, ""};
  EXPECT_FALSE(DecideHealth(report).healthy);
}

TEST_F(HealthTest, MissingDeviceNodeUnderDevfs) {
  DeviceReport report;
  report.info.allocate.device_nodes.push_back({"/dev/dri/card0", "/dev/dri/card0", "rw"});
  EXPECT_TRUE(DecideHealth(report).healthy);
  report.info.allocate.device_nodes.push_back({"/dev/dri/renderD128", "/dev/dri/renderD128", "rw"});
  const HealthVerdict verdict = DecideHealth(report);
  EXPECT_FALSE(verdict.healthy);
  EXPECT_EQ(verdict.reason, "device node /dev/dri/renderD128 missing");
}

TEST_F(HealthTest, DevfsPathMapping) {
  const NodeRoots roots{.devfs = "/x/dev"};
  EXPECT_EQ(roots.DevfsPath("/dev/nvidia0"), "/x/dev/nvidia0");
  EXPECT_EQ(roots.DevfsPath("/dev"), "/x/dev");
  EXPECT_EQ(roots.DevfsPath("/device/x"), "/device/x");
  EXPECT_EQ(roots.DevfsPath("/opt/thing"), "/opt/thing");
}

TEST_F(HealthTest, TemperatureThreshold) {
  DeviceReport report;
  report.samples.push_back(Temperature(95));
  EXPECT_TRUE(DecideHealth(report).healthy);  // no threshold configured
  options_.max_temperature_celsius = 90;
  HealthVerdict verdict = DecideHealth(report);
  EXPECT_FALSE(verdict.healthy);
  EXPECT_THAT(verdict.reason, HasSubstr("temperature 95 C over 90 C"));
  report.samples[0].value = 90;
  EXPECT_TRUE(DecideHealth(report).healthy);
  report.samples[0].value = NAN;
  EXPECT_TRUE(DecideHealth(report).healthy);
  report.samples[0] = {"devscope_device_power_watts", Sample::Kind::kGauge, {}, 500, ""};
  EXPECT_TRUE(DecideHealth(report).healthy);
}

TEST_F(HealthTest, ReasonsAreCombinedAndApplied) {
  options_.max_temperature_celsius = 80;
  DeviceReport report;
  report.health = {false, "health file says Unhealthy"};
  report.info.allocate.device_nodes.push_back({"/dev/widget9", "/dev/widget9", "rw"});
  report.samples.push_back(Temperature(81));
  HealthModel(options_, roots_).Apply(report);
  EXPECT_FALSE(report.health.healthy);
  EXPECT_EQ(report.health.reason,
            "health file says Unhealthy; device node /dev/widget9 missing; temperature 81 C over "
            "80 C");
}

}  // namespace
}  // namespace devscope
