// The devicedir layout's file parsers, each on its text alone.
#include "collectors/devicedir_files.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace devscope {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Optional;
using ::testing::Pair;
using ::testing::SizeIs;

TEST(ParseAllocateFileTest, ParsesEveryItem) {
  const Parsed<AllocateSpec> parsed = ParseAllocateFile(
      "# comment\n"
      "device /dev/widget0\n"
      "device /dev/widget0ctl /dev/ctl r\n"
      "env WIDGET_VISIBLE=0,1 with space\n"
      "mount /opt/widget/lib /usr/lib/widget ro\n"
      "mount /var/widget /var/widget\n"
      "annotation example.com/owner=team-a\n"
      "cdi example.com/widget=w0\n");
  const AllocateSpec& spec = parsed.value;
  const std::vector<std::string> errors = FormatLineErrors("a", parsed.errors);
  EXPECT_THAT(errors, SizeIs(0));
  ASSERT_THAT(spec.device_nodes, SizeIs(2));
  EXPECT_EQ(spec.device_nodes[0].host_path, "/dev/widget0");
  EXPECT_EQ(spec.device_nodes[0].container_path, "/dev/widget0");
  EXPECT_EQ(spec.device_nodes[0].permissions, "rw");
  EXPECT_EQ(spec.device_nodes[1].container_path, "/dev/ctl");
  EXPECT_EQ(spec.device_nodes[1].permissions, "r");
  EXPECT_THAT(spec.envs, ElementsAre(Pair("WIDGET_VISIBLE", "0,1 with space")));
  ASSERT_THAT(spec.mounts, SizeIs(2));
  EXPECT_TRUE(spec.mounts[0].read_only);
  EXPECT_FALSE(spec.mounts[1].read_only);
  EXPECT_THAT(spec.annotations, ElementsAre(Pair("example.com/owner", "team-a")));
  EXPECT_THAT(spec.cdi_devices, ElementsAre("example.com/widget=w0"));
}

TEST(ParseAllocateFileTest, ReportsBadLines) {
  const Parsed<AllocateSpec> parsed = ParseAllocateFile(
      "device relative/path\n"      // 1
      "device /dev/a /dev/a rwx\n"  // 2
      "env NOEQUALS\n"              // 3
      "mount /a\n"                  // 4
      "mount /a /b rw\n"            // 5
      "cdi example.com=w0\n"        // 6
      "frobnicate /x\n"             // 7
      "device /dev/ok\n");          // 8 ok
  const AllocateSpec& spec = parsed.value;
  const std::vector<std::string> errors = FormatLineErrors("dev0/allocate", parsed.errors);
  ASSERT_THAT(errors, SizeIs(7));
  for (int i = 0; i < 7; ++i) {
    EXPECT_THAT(errors[i], ::testing::StartsWith(absl::StrCat("dev0/allocate:", i + 1, ": ")));
  }
  ASSERT_THAT(spec.device_nodes, SizeIs(1));
  EXPECT_EQ(spec.device_nodes[0].host_path, "/dev/ok");
}

TEST(DeviceIdTest, Validity) {
  EXPECT_TRUE(IsValidDeviceId("widget-0.a_b"));
  EXPECT_TRUE(IsValidDeviceId(std::string(63, 'a')));
  EXPECT_FALSE(IsValidDeviceId(std::string(64, 'a')));
  EXPECT_FALSE(IsValidDeviceId(""));
  EXPECT_FALSE(IsValidDeviceId("a b"));
  EXPECT_FALSE(IsValidDeviceId("a:b"));
}

TEST(ParseResourceFileTest, AnExtendedResourceNameOnly) {
  absl::StatusOr<std::string> resource = ParseResourceFile(" example.com/widget\n");
  ASSERT_TRUE(resource.ok()) << resource.status();
  EXPECT_EQ(*resource, "example.com/widget");
  // The kubelet's rule, not just domain/name: a carriage return or a control byte inside (found
  // by test/fuzz's devicedir_resource target) would reach labels and the plugin's Register.
  for (const char* bad : {"", "widget", "/widget", "example.com/", "example.com/a/b",
                          "example.com/a b", "example .com/a", "exalpeke/.ogm\rdget",
                          "example.com/a\x01b", "Example.com/widget", "kubernetes.io/widget"}) {
    absl::StatusOr<std::string> resource = ParseResourceFile(bad);
    ASSERT_FALSE(resource.ok()) << bad;
    EXPECT_THAT(std::string(resource.status().message()),
                ::testing::HasSubstr("is not a valid extended resource"))
        << bad;
  }
}

TEST(ParseHealthFileTest, UnknownContentIsNotTrustedAsHealthy) {
  for (const char* healthy : {"", "\n", "Healthy\n", "HEALTHY"}) {
    const Parsed<HealthSignal> parsed = ParseHealthFile(healthy);
    EXPECT_TRUE(parsed.value.healthy) << healthy;
    EXPECT_THAT(parsed.errors, IsEmpty()) << healthy;
  }
  const Parsed<HealthSignal> unhealthy = ParseHealthFile("unhealthy\n");
  EXPECT_FALSE(unhealthy.value.healthy);
  EXPECT_EQ(unhealthy.value.reason, "health file says Unhealthy");
  EXPECT_THAT(unhealthy.errors, IsEmpty());
  const Parsed<HealthSignal> odd = ParseHealthFile("degraded\n");
  EXPECT_FALSE(odd.value.healthy);
  EXPECT_EQ(odd.value.reason, "health file says \"degraded\"");
  EXPECT_THAT(FormatLineErrors("h", odd.errors), ElementsAre("h:1: expected Healthy or Unhealthy"));
}

TEST(ParseNumaNodeFileTest, MinusOneIsNoAffinity) {
  EXPECT_THAT(ParseNumaNodeFile("1\n").value, Optional(1));
  EXPECT_EQ(ParseNumaNodeFile("-1\n").value, std::nullopt);
  for (const char* bad : {"", "x", "-2", "1.5"}) {
    const Parsed<std::optional<int64_t>> parsed = ParseNumaNodeFile(bad);
    EXPECT_EQ(parsed.value, std::nullopt) << bad;
    EXPECT_THAT(parsed.errors, SizeIs(1)) << bad;
  }
}

TEST(ParseInfoFileTest, KeysAliasesAndBadLines) {
  const Parsed<InfoFile> parsed = ParseInfoFile(
      "# identity\nvendor=Acme\nmodel = Widget 9000\nserial=S1\npci_address=3B:00.0\n"
      "uuid=WID-1234\nfuture_key=ignored\nbroken line\n=nokey\n"
      "aliases = gpu.example.com/gpu-0, widget-a\twidget-b\n");
  EXPECT_EQ(parsed.value.model, "Widget 9000");
  EXPECT_THAT(FormatLineErrors("i", parsed.errors),
              ElementsAre("i:8: expected key=value", "i:9: expected key=value"));
  DeviceInfo info;
  ApplyInfoFile(parsed.value, info);
  EXPECT_EQ(info.vendor, "Acme");
  EXPECT_EQ(info.serial, "S1");
  EXPECT_EQ(info.pci_address, "0000:3b:00.0");
  EXPECT_THAT(info.aliases, ElementsAre("0000:3b:00.0", "WID-1234", "gpu.example.com/gpu-0",
                                        "widget-a", "widget-b"));

  DeviceInfo bare;
  ApplyInfoFile(ParseInfoFile("vendor=Acme\n").value, bare);
  EXPECT_THAT(bare.aliases, IsEmpty());
}

}  // namespace
}  // namespace devscope
