#include "collectors/registry.h"

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/support/temp_dir.h"

namespace devscope {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

class RegistryTest : public ::testing::Test {
 protected:
  RegistryTest() {
    // An empty host: no GPUs, no NICs, no NVML.
    config_.sysfs = absl::StrCat(root_, "/sys");
    config_.devfs = absl::StrCat(root_, "/dev");
    std::filesystem::create_directories(config_.sysfs);
    std::filesystem::create_directories(config_.devfs);
    config_.nvml_library = absl::StrCat(root_, "/no-such-libnvidia-ml.so.1");
  }

  static std::vector<std::string> Names(const std::vector<std::unique_ptr<Collector>>& list) {
    std::vector<std::string> names;
    for (const auto& c : list) names.emplace_back(c->name());
    return names;
  }

  TempDir dir_;
  const std::string root_ = dir_.path();
  Config config_;
};

TEST_F(RegistryTest, AutoSkipsAbsentHardwareQuietly) {
  EXPECT_THAT(Names(MakeEnabledCollectors(config_)), IsEmpty());
}

TEST_F(RegistryTest, DevicedirWhenAPathIsGivenEvenAnUnreadableOne) {
  config_.devicedir_path = absl::StrCat(root_, "/absent");
  auto collectors = MakeEnabledCollectors(config_);
  ASSERT_THAT(Names(collectors), ElementsAre("devicedir"));
  EXPECT_FALSE(collectors[0]->Collect().ok());  // reported as collector_up 0
}

TEST_F(RegistryTest, ForcedOnCollectorStaysAsAFailingOne) {
  config_.devicedir_path = root_;
  config_.nvml.toggle = CollectorToggle::kOn;
  config_.drm.toggle = CollectorToggle::kOn;
  auto collectors = MakeEnabledCollectors(config_);
  ASSERT_THAT(Names(collectors), ElementsAre("devicedir", "nvml", "drm"));
  auto nvml = collectors[1]->Collect();
  ASSERT_FALSE(nvml.ok());
  EXPECT_THAT(std::string(nvml.status().message()), ::testing::HasSubstr("no-such-libnvidia"));
  EXPECT_FALSE(collectors[2]->Collect().ok());
}

TEST_F(RegistryTest, OffSkips) {
  config_.nvml.toggle = CollectorToggle::kOff;
  config_.drm.toggle = CollectorToggle::kOff;
  config_.netdev.toggle = CollectorToggle::kOff;
  EXPECT_THAT(Names(MakeEnabledCollectors(config_)), IsEmpty());
}

}  // namespace
}  // namespace devscope
