// A scratch root with sys/ and dev/ for the hardware collectors' tests, and the two things those
// tests do to it: write an attribute, make a kernel-style symlink.
#ifndef DEVSCOPE_TEST_COLLECTORS_SYSFS_FIXTURE_H_
#define DEVSCOPE_TEST_COLLECTORS_SYSFS_FIXTURE_H_

#include <filesystem>
#include <string>

#include "collectors/node_roots.h"
#include "gtest/gtest.h"
#include "test/support/temp_dir.h"

namespace devscope {

class SysfsFixtureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    roots_.sysfs = root_ + "/sys";
    roots_.devfs = root_ + "/dev";
  }

  void Write(const std::string& path, const std::string& content) { WriteFile(path, content); }
  void Link(const std::string& path, const std::string& target) {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::filesystem::create_symlink(target, path);
  }
  // The PCI function's directory, where class/ links point.
  std::string PciDir(const std::string& pci) { return roots_.sysfs + "/devices/pci0000:00/" + pci; }

  TempDir dir_;
  const std::string root_ = dir_.path();
  NodeRoots roots_;
};

}  // namespace devscope

#endif  // DEVSCOPE_TEST_COLLECTORS_SYSFS_FIXTURE_H_
