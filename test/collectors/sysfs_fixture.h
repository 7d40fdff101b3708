// A scratch root with sys/ and dev/ for the hardware collectors' tests, and the two things those
// tests do to it: write an attribute, make a kernel-style symlink.
#ifndef DEVSCOPE_TEST_COLLECTORS_SYSFS_FIXTURE_H_
#define DEVSCOPE_TEST_COLLECTORS_SYSFS_FIXTURE_H_

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#include "common/config.h"
#include "gtest/gtest.h"

namespace devscope {

class SysfsFixtureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/dssysXXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    root_ = dir;
    config_.sysfs = root_ + "/sys";
    config_.devfs = root_ + "/dev";
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }

  void Write(const std::string& path, const std::string& content) {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path) << content;
  }
  void Link(const std::string& path, const std::string& target) {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::filesystem::create_symlink(target, path);
  }
  // The PCI function's directory, where class/ links point.
  std::string PciDir(const std::string& pci) {
    return config_.sysfs + "/devices/pci0000:00/" + pci;
  }

  std::string root_;
  Config config_;
};

}  // namespace devscope

#endif  // DEVSCOPE_TEST_COLLECTORS_SYSFS_FIXTURE_H_
