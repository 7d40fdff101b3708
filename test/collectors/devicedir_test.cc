#include "collectors/devicedir.h"

#include <poll.h>
#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "collectors/registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace devscope {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::SizeIs;

void WriteFile(const std::string& path, const std::string& content) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream out(path, std::ios::trunc);
  out << content;
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/ddtestXXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(ParsePromTextTest, ParsesValidSamples) {
  ParseErrors errors;
  const std::vector<Sample> samples = ParsePromText(
      "# HELP devscope_device_power_watts Board power.\n"
      "# TYPE devscope_device_power_watts gauge\n"
      "devscope_device_power_watts 41.5\n"
      "# a plain comment\n"
      "\n"
      "# TYPE devscope_device_errors_total counter\n"
      "devscope_device_errors_total{kind=\"ecc\\\"x\\\\y\\nz\",bank=\"1\",} 3\n"
      "devscope_device_errors_total{kind=\"pcie\"} 0\n"
      "devscope_device_utilization_ratio NaN\n"
      "devscope_device_temperature_celsius{sensor=\"a\"} +Inf\n"
      "devscope_device_temperature_celsius{sensor=\"b\"} -Inf\n"
      "devscope_device_memory_used_bytes 1.5e9\r\n",
      "w0/metrics.prom", errors);
  EXPECT_THAT(errors, SizeIs(0));
  ASSERT_THAT(samples, SizeIs(7));
  EXPECT_EQ(samples[0].name, "devscope_device_power_watts");
  EXPECT_EQ(samples[0].kind, Sample::Kind::kGauge);
  EXPECT_EQ(samples[0].value, 41.5);
  EXPECT_EQ(samples[0].help, "Board power.");
  EXPECT_EQ(samples[1].kind, Sample::Kind::kCounter);
  EXPECT_THAT(samples[1].labels, ElementsAre(Pair("kind", "ecc\"x\\y\nz"), Pair("bank", "1")));
  EXPECT_EQ(samples[1].value, 3);
  EXPECT_TRUE(std::isnan(samples[3].value));
  EXPECT_EQ(samples[4].value, INFINITY);
  EXPECT_EQ(samples[5].value, -INFINITY);
  EXPECT_EQ(samples[6].value, 1.5e9);
}

TEST(ParsePromTextTest, ReportsEachBadLineWithFileAndLineAndKeepsTheRest) {
  ParseErrors errors;
  const std::vector<Sample> samples = ParsePromText(
      "devscope_device_power_watts 1\n"                     // 1 ok
      "node_cpu_seconds_total 5\n"                          // 2 wrong prefix
      "devscope_device_power_watts{device=\"x\"} 1\n"       // 3 reserved label
      "devscope_device_power_watts{pod=\"x\"} 1\n"          // 4 reserved label
      "devscope_device_power_watts{a=\"x} 1\n"              // 5 unterminated
      "devscope_device_power_watts{a=\"\\t\"} 1\n"          // 6 bad escape
      "devscope_device_link_up\n"                           // 7 missing value
      "devscope_device_link_up abc\n"                       // 8 bad value
      "devscope_device_link_up{x=\"1\"} 1 1700000000000\n"  // 9 timestamp
      "# TYPE devscope_device_lat_seconds histogram\n"      // 10 bad type
      "devscope_device_power_watts 2\n"                     // 11 duplicate series
      "# TYPE devscope_device_power_watts counter\n"        // 12 TYPE after samples
      "{a=\"b\"} 1\n"                                       // 13 no name
      "devscope_device_temperature_celsius 60\n",           // 14 ok
      "dir/metrics.prom", errors);
  ASSERT_THAT(samples, SizeIs(2));
  EXPECT_EQ(samples[0].name, "devscope_device_power_watts");
  EXPECT_EQ(samples[0].value, 1);
  EXPECT_EQ(samples[1].name, "devscope_device_temperature_celsius");
  ASSERT_THAT(errors, SizeIs(12));
  const int expected_lines[] = {2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13};
  for (size_t i = 0; i < errors.size(); ++i) {
    EXPECT_THAT(errors[i],
                ::testing::StartsWith(absl::StrCat("dir/metrics.prom:", expected_lines[i], ": ")));
  }
  EXPECT_THAT(errors[0], HasSubstr("does not start with devscope_device_"));
  EXPECT_THAT(errors[1], HasSubstr("label device is set by devscope"));
  EXPECT_THAT(errors[7], HasSubstr("timestamps are not supported"));
  EXPECT_THAT(errors[8], HasSubstr("not gauge or counter"));
  EXPECT_THAT(errors[9], HasSubstr("duplicate series"));
}

TEST(ParsePromTextTest, RefusesNegativeCounter) {
  ParseErrors errors;
  auto samples = ParsePromText(
      "# TYPE devscope_device_energy_joules_total counter\n"
      "devscope_device_energy_joules_total -1\n",
      "f", errors);
  EXPECT_THAT(samples, SizeIs(0));
  EXPECT_THAT(errors, ElementsAre(HasSubstr("f:2: counter")));
}

TEST(ParsePromTextTest, SurvivesGarbage) {
  ParseErrors errors;
  std::string garbage;
  for (int i = 0; i < 2000; ++i) garbage.push_back(static_cast<char>((i * 131 + 7) % 256));
  garbage += "\ndevscope_device_power_watts{\n}\n\"\n{{{{\ndevscope_device_x{a=\"\\";
  auto samples = ParsePromText(garbage, "g", errors);
  EXPECT_THAT(samples, SizeIs(0));
  EXPECT_FALSE(errors.empty());
}

TEST(ParseAllocateFileTest, ParsesEveryItem) {
  ParseErrors errors;
  const AllocateSpec spec = ParseAllocateFile(
      "# comment\n"
      "device /dev/widget0\n"
      "device /dev/widget0ctl /dev/ctl r\n"
      "env WIDGET_VISIBLE=0,1 with space\n"
      "mount /opt/widget/lib /usr/lib/widget ro\n"
      "mount /var/widget /var/widget\n"
      "annotation example.com/owner=team-a\n"
      "cdi example.com/widget=w0\n",
      "a", errors);
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
  ParseErrors errors;
  const AllocateSpec spec = ParseAllocateFile(
      "device relative/path\n"      // 1
      "device /dev/a /dev/a rwx\n"  // 2
      "env NOEQUALS\n"              // 3
      "mount /a\n"                  // 4
      "mount /a /b rw\n"            // 5
      "cdi example.com=w0\n"        // 6
      "frobnicate /x\n"             // 7
      "device /dev/ok\n",           // 8 ok
      "dev0/allocate", errors);
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

class DevicedirCollectorTest : public ::testing::Test {
 protected:
  std::string Dev(const std::string& id, const std::string& file) {
    return absl::StrCat(dir_.path(), "/", id, "/", file);
  }
  TempDir dir_;
};

TEST_F(DevicedirCollectorTest, ReadsDevicesAndSkipsBadOnes) {
  WriteFile(Dev("w0", "resource"), "example.com/widget\n");
  WriteFile(Dev("w0", "health"), "Healthy\n");
  WriteFile(Dev("w0", "numa_node"), "1\n");
  WriteFile(Dev("w0", "info"),
            "vendor=Acme\nmodel=Widget 9000\nserial=S1\npci_address=0000:3B:00.0\n"
            "uuid=WID-1234\nfuture_key=ignored\nbroken line\n");
  WriteFile(Dev("w0", "metrics.prom"),
            "devscope_device_power_watts 10\nbad_metric 1\ndevscope_device_link_up 1\n");
  WriteFile(Dev("w0", "allocate"), "device /dev/widget0\nnonsense\n");
  WriteFile(Dev("w1", "resource"), "example.com/widget");
  WriteFile(Dev("w1", "health"), "Unhealthy");
  WriteFile(Dev("w1", "numa_node"), "-1");
  WriteFile(Dev("no-resource", "health"), "Healthy");
  WriteFile(Dev("bad:name", "resource"), "example.com/widget");
  WriteFile(Dev("badres", "resource"), "widget");
  WriteFile(Dev(".staging", "resource"), "example.com/widget");
  WriteFile(absl::StrCat(dir_.path(), "/README"), "not a device");

  DevicedirCollector collector(dir_.path());
  auto devices = collector.Collect();
  ASSERT_TRUE(devices.ok()) << devices.status();
  ASSERT_THAT(*devices, SizeIs(2));
  const DeviceReport& w0 = (*devices)[0];
  EXPECT_EQ(w0.info.id, "w0");
  EXPECT_EQ(w0.info.resource, "example.com/widget");
  EXPECT_TRUE(w0.info.advertise);
  EXPECT_EQ(w0.info.vendor, "Acme");
  EXPECT_EQ(w0.info.model, "Widget 9000");
  EXPECT_EQ(w0.info.serial, "S1");
  EXPECT_EQ(w0.info.pci_address, "0000:3b:00.0");
  EXPECT_THAT(w0.info.aliases, ElementsAre("0000:3b:00.0", "WID-1234"));
  EXPECT_EQ(w0.info.numa_node, 1);
  EXPECT_TRUE(w0.health.healthy);
  EXPECT_THAT(w0.samples, SizeIs(2));
  ASSERT_THAT(w0.info.allocate.device_nodes, SizeIs(1));
  const DeviceReport& w1 = (*devices)[1];
  EXPECT_EQ(w1.info.id, "w1");
  EXPECT_FALSE(w1.health.healthy);
  EXPECT_THAT(w1.health.reason, HasSubstr("Unhealthy"));
  EXPECT_FALSE(w1.info.numa_node.has_value());
  // info line 7, metrics.prom line 2, allocate line 2, and the README, no-resource, bad:name and
  // badres entries; .staging is work in progress and not a problem.
  EXPECT_EQ(collector.parse_errors(), 7u);
}

TEST_F(DevicedirCollectorTest, UnknownHealthContentIsUnhealthy) {
  WriteFile(Dev("w0", "resource"), "example.com/widget");
  WriteFile(Dev("w0", "health"), "Maybe");
  DevicedirCollector collector(dir_.path());
  auto devices = collector.Collect();
  ASSERT_TRUE(devices.ok());
  ASSERT_THAT(*devices, SizeIs(1));
  EXPECT_FALSE((*devices)[0].health.healthy);
  EXPECT_EQ(collector.parse_errors(), 1u);
}

TEST_F(DevicedirCollectorTest, MissingRootFailsThePass) {
  DevicedirCollector collector(absl::StrCat(dir_.path(), "/absent"));
  auto devices = collector.Collect();
  EXPECT_FALSE(devices.ok());
  EXPECT_THAT(std::string(devices.status().message()), HasSubstr("absent"));
}

TEST_F(DevicedirCollectorTest, FactoryNeedsAPath) {
  Config config;
  EXPECT_FALSE(NewDevicedirCollector(config).ok());
  config.devicedir_path = dir_.path();
  auto collector = NewDevicedirCollector(config);
  ASSERT_TRUE(collector.ok());
  EXPECT_EQ((*collector)->name(), "devicedir");
}

TEST_F(DevicedirCollectorTest, ReadsAThousandDevices) {
  for (int i = 0; i < 1024; ++i) {
    const std::string id = absl::StrCat("w", i);
    WriteFile(Dev(id, "resource"), "example.com/widget");
    WriteFile(Dev(id, "numa_node"), absl::StrCat(i % 2));
    WriteFile(Dev(id, "info"), absl::StrCat("vendor=Acme\nmodel=W\nuuid=WID-", i, "\n"));
    WriteFile(Dev(id, "metrics.prom"),
              absl::StrCat("# TYPE devscope_device_power_watts gauge\n"
                           "devscope_device_power_watts ",
                           i,
                           "\n"
                           "devscope_device_utilization_ratio 0.5\n"
                           "devscope_device_temperature_celsius 50\n"
                           "# TYPE devscope_device_errors_total counter\n"
                           "devscope_device_errors_total{kind=\"ecc\"} 0\n"
                           "devscope_device_errors_total{kind=\"pcie\"} 1\n"));
    WriteFile(Dev(id, "allocate"), absl::StrCat("device /dev/widget", i, "\n"));
  }
  DevicedirCollector collector(dir_.path());
  const absl::Time start = absl::Now();
  auto devices = collector.Collect();
  const absl::Duration took = absl::Now() - start;
  ASSERT_TRUE(devices.ok());
  ASSERT_THAT(*devices, SizeIs(1024));
  EXPECT_EQ(collector.parse_errors(), 0u);
  EXPECT_THAT((*devices)[1023].samples, SizeIs(5));
  const absl::Time again = absl::Now();
  ASSERT_TRUE(collector.Collect().ok());
  std::printf("devicedir pass over 1024 devices took %s (first), %s (next)\n",
              absl::FormatDuration(took).c_str(),
              absl::FormatDuration(absl::Now() - again).c_str());
}

bool WaitReadable(int fd, int timeout_ms) {
  struct pollfd p = {fd, POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) == 1;
}

TEST_F(DevicedirCollectorTest, WatchFiresForHealthWritesRenamesAndNewDevices) {
  WriteFile(Dev("w0", "resource"), "example.com/widget");
  DevicedirCollector collector(dir_.path());
  ASSERT_GE(collector.watch_fd(), 0);
  ASSERT_TRUE(collector.Collect().ok());
  collector.DrainWatch();
  EXPECT_FALSE(WaitReadable(collector.watch_fd(), 0));

  // A plain write (IN_CLOSE_WRITE).
  WriteFile(Dev("w0", "health"), "Unhealthy");
  ASSERT_TRUE(WaitReadable(collector.watch_fd(), 1000));
  collector.DrainWatch();
  EXPECT_FALSE(WaitReadable(collector.watch_fd(), 0));
  auto devices = collector.Collect();
  ASSERT_TRUE(devices.ok());
  EXPECT_FALSE((*devices)[0].health.healthy);

  // Rename into place.
  WriteFile(Dev("w0", ".health.tmp"), "Healthy");
  collector.DrainWatch();
  std::filesystem::rename(Dev("w0", ".health.tmp"), Dev("w0", "health"));
  ASSERT_TRUE(WaitReadable(collector.watch_fd(), 1000));
  collector.DrainWatch();
  devices = collector.Collect();
  ASSERT_TRUE(devices.ok());
  EXPECT_TRUE((*devices)[0].health.healthy);

  // A new device directory, then a file in it: DrainWatch adds the new directory's watch.
  std::filesystem::create_directories(absl::StrCat(dir_.path(), "/w1"));
  ASSERT_TRUE(WaitReadable(collector.watch_fd(), 1000));
  collector.DrainWatch();
  WriteFile(Dev("w1", "resource"), "example.com/widget");
  ASSERT_TRUE(WaitReadable(collector.watch_fd(), 1000));
  collector.DrainWatch();
  devices = collector.Collect();
  ASSERT_TRUE(devices.ok());
  EXPECT_THAT(*devices, SizeIs(2));

  // A device directory removed.
  std::filesystem::remove_all(absl::StrCat(dir_.path(), "/w1"));
  ASSERT_TRUE(WaitReadable(collector.watch_fd(), 1000));
  collector.DrainWatch();
  devices = collector.Collect();
  ASSERT_TRUE(devices.ok());
  EXPECT_THAT(*devices, SizeIs(1));
}

}  // namespace
}  // namespace devscope
