// The devicedir's trust rules (collectors/devicedir_trust.h): ownership and modes of the
// devicedir and its files, checked through the collector as it reads them, and the host paths an
// allocate file may ask for.
//
// The fixtures are written by whoever runs the tests (root in CI, a user elsewhere), so the tests
// name that user as the configured owner, and make files "someone else's" by configuring another
// owner; as root they also chown files to another user.
#include "collectors/devicedir_trust.h"

#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "collectors/devicedir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/support/temp_dir.h"

namespace devscope {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;

class DevicedirTrustTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(chmod(dir_.path().c_str(), 0755), 0);
    WriteDevice("w0");
    WriteDevice("w1");
  }
  void WriteDevice(const std::string& id) {
    WriteFile(Path(id, "resource"), "example.com/widget\n");
    WriteFile(Path(id, "health"), "Healthy\n");
    WriteFile(Path(id, "allocate"), "device /dev/widget0\nmount /srv/share /share ro\n");
  }
  std::string Path(const std::string& id, const std::string& file = "") const {
    return file.empty() ? dir_.Path(id) : dir_.Path(absl::StrCat(id, "/", file));
  }
  // The IDs of the devices a pass of a collector with `owner` reads, and its problem count.
  std::vector<std::string> Ids(uid_t owner, std::vector<std::string> prefixes = {}) {
    DevicedirCollector collector(dir_.path(), owner, std::move(prefixes));
    auto devices = collector.Collect();
    EXPECT_TRUE(devices.ok()) << devices.status();
    std::vector<std::string> ids;
    if (devices.ok()) {
      for (const DeviceReport& d : *devices) ids.push_back(d.info.id);
    }
    problems_ = collector.parse_errors();
    return ids;
  }

  TempDir dir_;
  const uid_t me_ = geteuid();
  uint64_t problems_ = 0;
};

TEST_F(DevicedirTrustTest, FixturesOfTheConfiguredOwnerAreRead) {
  EXPECT_EQ(Ids(me_), (std::vector<std::string>{"w0", "w1"}));
  EXPECT_EQ(problems_, 0u);
}

TEST_F(DevicedirTrustTest, AFileWritableByOthersRefusesItsDeviceOnly) {
  for (const char* file : {"resource", "health", "allocate"}) {
    ASSERT_EQ(chmod(Path("w0", file).c_str(), 0666), 0);
    EXPECT_EQ(Ids(me_), (std::vector<std::string>{"w1"})) << file;
    EXPECT_EQ(problems_, 1u);
    ASSERT_EQ(chmod(Path("w0", file).c_str(), 0664), 0);  // group-writable: refused too
    EXPECT_EQ(Ids(me_), (std::vector<std::string>{"w1"})) << file;
    ASSERT_EQ(chmod(Path("w0", file).c_str(), 0644), 0);
  }
  EXPECT_THAT(Ids(me_), SizeIs(2));
}

TEST_F(DevicedirTrustTest, AWritableDeviceDirectoryIsRefused) {
  ASSERT_EQ(chmod(Path("w1").c_str(), 0777), 0);
  EXPECT_EQ(Ids(me_), (std::vector<std::string>{"w0"}));
  EXPECT_EQ(problems_, 1u);
}

TEST_F(DevicedirTrustTest, AWritableDevicedirFailsThePass) {
  ASSERT_EQ(chmod(dir_.path().c_str(), 0777), 0);
  DevicedirCollector collector(dir_.path(), me_);
  auto devices = collector.Collect();
  ASSERT_FALSE(devices.ok());
  EXPECT_EQ(devices.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(devices.status().message()), HasSubstr("writable by group or others"));
}

TEST_F(DevicedirTrustTest, FilesOfAnotherOwnerAreRefused) {
  // Configured for another user, this test's files are someone else's; root is always trusted.
  const uid_t other = me_ == 0 ? 4242 : me_ + 1;
  DevicedirCollector collector(dir_.path(), other);
  auto devices = collector.Collect();
  if (me_ == 0) {
    ASSERT_TRUE(devices.ok());
    EXPECT_THAT(*devices, SizeIs(2));
    // As root: a file given to another user refuses its device under the default owner.
    ASSERT_EQ(chown(Path("w1", "allocate").c_str(), 4242, 4242), 0);
    EXPECT_EQ(Ids(0), (std::vector<std::string>{"w0"}));
    EXPECT_EQ(Ids(4242), (std::vector<std::string>{"w0", "w1"}));
  } else {
    ASSERT_FALSE(devices.ok());
    EXPECT_THAT(std::string(devices.status().message()), HasSubstr("owned by uid"));
  }
}

TEST_F(DevicedirTrustTest, AFifoOrASymlinkedSecretIsNotRead) {
  ASSERT_EQ(unlink(Path("w0", "health").c_str()), 0);
  ASSERT_EQ(mkfifo(Path("w0", "health").c_str(), 0644), 0);  // open(2) would wait for a writer
  ASSERT_EQ(unlink(Path("w1", "resource").c_str()), 0);
  WriteFile(dir_.Path("secret"), "example.com/secret");
  ASSERT_EQ(chmod(dir_.Path("secret").c_str(), 0666), 0);
  ASSERT_EQ(symlink(dir_.Path("secret").c_str(), Path("w1", "resource").c_str()), 0);
  EXPECT_TRUE(Ids(me_).empty());
  EXPECT_EQ(problems_, 3u);  // w0, w1 and the file "secret" that is no device directory
}

TEST_F(DevicedirTrustTest, AllocateHostPathsMustBeCanonicalAndWhereTheyBelong) {
  WriteFile(Path("w1", "allocate"), "device /dev/../etc/passwd /dev/x rw\n");
  EXPECT_EQ(Ids(me_), (std::vector<std::string>{"w0"}));
  for (const char* bad :
       {"device /etc/passwd", "device /dev", "device /dev/", "device /dev//sda",
        "device /dev/./sda", "mount / /host", "mount /srv/../etc /etc", "mount /srv/share/ /x"}) {
    WriteFile(Path("w1", "allocate"), absl::StrCat(bad, "\n"));
    EXPECT_EQ(Ids(me_), (std::vector<std::string>{"w0"})) << bad;
    EXPECT_EQ(problems_, 1u) << bad;
  }
  WriteFile(Path("w1", "allocate"), "device /dev/dri/card1\nmount /srv/share /share\n");
  EXPECT_THAT(Ids(me_), SizeIs(2));
  // With prefixes, mounts must be within them: /srv/share is, /srv/shared is not.
  EXPECT_THAT(Ids(me_, {"/srv/share"}), SizeIs(2));
  EXPECT_THAT(Ids(me_, {"/srv"}), SizeIs(2));
  WriteFile(Path("w1", "allocate"), "mount /srv/shared /x\n");
  EXPECT_EQ(Ids(me_, {"/srv/share", "/opt"}), (std::vector<std::string>{"w0"}));
}

TEST(CanonicalPathTest, Rules) {
  for (const char* good : {"/", "/dev/sda", "/dev/dri/card1", "/a.b/..c/d..", "/x/.y"}) {
    EXPECT_TRUE(IsCanonicalPath(good)) << good;
  }
  for (const char* bad : {"", "dev", "./dev", "/dev/", "//dev", "/dev//x", "/dev/.", "/dev/..",
                          "/dev/../etc", "/./dev"}) {
    EXPECT_FALSE(IsCanonicalPath(bad)) << bad;
  }
}

TEST(ResolveOwnerTest, NamesAndNumbers) {
  EXPECT_EQ(*ResolveOwner("root"), 0u);
  EXPECT_EQ(*ResolveOwner("1000"), 1000u);
  EXPECT_FALSE(ResolveOwner("no-such-user-here").ok());
  EXPECT_FALSE(ResolveOwner("-1").ok());
  EXPECT_FALSE(ResolveOwner("").ok());
}

TEST(CheckOwnerAndModeTest, SaysWhichRuleIsBroken) {
  struct stat st = {};
  st.st_uid = 0;
  st.st_mode = S_IFREG | 0644;
  EXPECT_TRUE(CheckOwnerAndMode(st, 0, "f").ok());
  st.st_mode = S_IFREG | 0602;
  EXPECT_THAT(std::string(CheckOwnerAndMode(st, 0, "f").message()), HasSubstr("mode 0602"));
  st.st_mode = S_IFREG | 0644;
  st.st_uid = 7;
  EXPECT_THAT(std::string(CheckOwnerAndMode(st, 0, "f").message()),
              HasSubstr("owned by uid 7, not by root"));
  EXPECT_TRUE(CheckOwnerAndMode(st, 7, "f").ok());
}

}  // namespace
}  // namespace devscope
