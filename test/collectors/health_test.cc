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
    config_.devfs = absl::StrCat(root_, "/dev");
    std::filesystem::create_directories(absl::StrCat(config_.devfs, "/dri"));
    std::ofstream(absl::StrCat(config_.devfs, "/dri/card0")) << "";
  }

  static Sample Temperature(double value) {
    return {"devscope_device_temperature_celsius", Sample::Kind::kGauge, {}, value, ""};
  }

  TempDir dir_;
  const std::string root_ = dir_.path();
  Config config_;
};

TEST_F(HealthTest, HealthyByDefault) {
  DeviceReport report;
  EXPECT_EQ(DecideHealth(report, config_), (HealthVerdict{true, ""}));
}

TEST_F(HealthTest, CollectorSignalIsKept) {
  DeviceReport report;
  report.health = {false, "xid 79"};
  EXPECT_EQ(DecideHealth(report, config_), (HealthVerdict{false, "xid 79"}));
  report.health = {false, ""};
  EXPECT_FALSE(DecideHealth(report, config_).healthy);
}

TEST_F(HealthTest, MissingDeviceNodeUnderDevfs) {
  DeviceReport report;
  report.info.allocate.device_nodes.push_back({"/dev/dri/card0", "/dev/dri/card0", "rw"});
  EXPECT_TRUE(DecideHealth(report, config_).healthy);
  report.info.allocate.device_nodes.push_back({"/dev/dri/renderD128", "/dev/dri/renderD128", "rw"});
  const HealthVerdict verdict = DecideHealth(report, config_);
  EXPECT_FALSE(verdict.healthy);
  EXPECT_EQ(verdict.reason, "device node /dev/dri/renderD128 missing");
}

TEST_F(HealthTest, DevfsPathMapping) {
  EXPECT_EQ(DevfsPath("/dev/nvidia0", "/x/dev"), "/x/dev/nvidia0");
  EXPECT_EQ(DevfsPath("/dev", "/x/dev"), "/x/dev");
  EXPECT_EQ(DevfsPath("/device/x", "/x/dev"), "/device/x");
  EXPECT_EQ(DevfsPath("/opt/thing", "/x/dev"), "/opt/thing");
}

TEST_F(HealthTest, TemperatureThreshold) {
  DeviceReport report;
  report.samples.push_back(Temperature(95));
  EXPECT_TRUE(DecideHealth(report, config_).healthy);  // no threshold configured
  config_.max_temperature_celsius = 90;
  HealthVerdict verdict = DecideHealth(report, config_);
  EXPECT_FALSE(verdict.healthy);
  EXPECT_THAT(verdict.reason, HasSubstr("temperature 95 C over 90 C"));
  report.samples[0].value = 90;
  EXPECT_TRUE(DecideHealth(report, config_).healthy);
  report.samples[0].value = NAN;
  EXPECT_TRUE(DecideHealth(report, config_).healthy);
  report.samples[0] = {"devscope_device_power_watts", Sample::Kind::kGauge, {}, 500, ""};
  EXPECT_TRUE(DecideHealth(report, config_).healthy);
}

TEST_F(HealthTest, ReasonsAreCombinedAndApplied) {
  config_.max_temperature_celsius = 80;
  DeviceReport report;
  report.health = {false, "health file says Unhealthy"};
  report.info.allocate.device_nodes.push_back({"/dev/widget9", "/dev/widget9", "rw"});
  report.samples.push_back(Temperature(81));
  ApplyHealth(report, config_);
  EXPECT_FALSE(report.health.healthy);
  EXPECT_EQ(report.health.reason,
            "health file says Unhealthy; device node /dev/widget9 missing; temperature 81 C over "
            "80 C");
}

}  // namespace
}  // namespace devscope
