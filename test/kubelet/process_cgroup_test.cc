// The container of a process from /proc/PID/cgroup: every cgroup version, driver and runtime
// shape, as fixture files in testdata/cgroup/.
#include "kubelet/process_cgroup.h"

#include <fstream>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/support/temp_dir.h"

namespace devscope {
namespace {

constexpr char kContainer[] = "3f2a9c0d5b7e41a8c6d2e9f0b1a3c5d7e9f1a2b4c6d8e0f1a3b5c7d9e1f2a4b6";
constexpr char kPod[] = "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f";

std::string Fixture(const std::string& name) {
  std::ifstream in(std::string(DEVSCOPE_SOURCE_DIR) + "/test/kubelet/testdata/cgroup/" + name);
  EXPECT_TRUE(in.good()) << name;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class ProcessCgroupShapes : public ::testing::TestWithParam<const char*> {};

TEST_P(ProcessCgroupShapes, NameTheContainerAndItsPod) {
  const std::optional<ProcessCgroup> found = ParseProcessCgroup(Fixture(GetParam()));
  ASSERT_TRUE(found.has_value()) << GetParam();
  EXPECT_EQ(found->container_id, kContainer);
  EXPECT_EQ(found->pod_uid, kPod);
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, ProcessCgroupShapes,
    ::testing::Values("v1_cgroupfs_containerd.txt", "v1_systemd_containerd.txt",
                      "v2_systemd_containerd.txt", "v2_cgroupfs_containerd_guaranteed.txt",
                      "v1_cgroupfs_crio.txt", "v2_systemd_crio.txt", "v1_systemd_docker.txt",
                      // The node itself a container (kind): the deepest container is the pod's.
                      "v2_kind_node.txt",
                      // Seen from a cgroup namespace: the path starts above it.
                      "v2_cgroup_namespace.txt"));

TEST(ProcessCgroupTest, HostProcessesConmonAndJunkNameNoContainer) {
  EXPECT_FALSE(ParseProcessCgroup(Fixture("v2_host_process.txt")).has_value());
  EXPECT_FALSE(ParseProcessCgroup(Fixture("v2_systemd_crio_conmon.txt")).has_value());
  EXPECT_FALSE(ParseProcessCgroup(Fixture("malformed.txt")).has_value());
  EXPECT_FALSE(ParseProcessCgroup("").has_value());
  // 63 hex digits are no container ID.
  EXPECT_FALSE(ParseProcessCgroup(std::string("0::/kubepods/pod") + kPod + "/" +
                                  std::string(kContainer).substr(1))
                   .has_value());
}

TEST(ProcessCgroupTest, TheUnifiedHierarchyComesFirst) {
  const std::string other(64, 'a');
  const auto found = ParseProcessCgroup(std::string("4:memory:/kubepods/pod") + kPod + "/" + other +
                                        "\n0::/kubepods/pod" + kPod + "/" + kContainer + "\n");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->container_id, kContainer);
}

TEST(ProcessCgroupTest, ReadsUnderTheProcfsRoot) {
  TempDir procfs;
  WriteFile(procfs.Path("4242/cgroup"), Fixture("v2_systemd_containerd.txt"));
  auto read = ReadProcessCgroup(procfs.path(), 4242);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_TRUE(read->has_value());
  EXPECT_EQ((*read)->container_id, kContainer);
  EXPECT_TRUE(absl::IsNotFound(ReadProcessCgroup(procfs.path(), 4243).status()));
}

}  // namespace
}  // namespace devscope
