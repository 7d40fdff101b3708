#include "collectors/devicedir.h"

#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "collectors/registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/support/temp_dir.h"

namespace devscope {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::SizeIs;

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

  DevicedirCollector collector(dir_.path(), geteuid());
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
  DevicedirCollector collector(dir_.path(), geteuid());
  auto devices = collector.Collect();
  ASSERT_TRUE(devices.ok());
  ASSERT_THAT(*devices, SizeIs(1));
  EXPECT_FALSE((*devices)[0].health.healthy);
  EXPECT_EQ(collector.parse_errors(), 1u);
}

TEST_F(DevicedirCollectorTest, MissingRootFailsThePass) {
  DevicedirCollector collector(absl::StrCat(dir_.path(), "/absent"), geteuid());
  auto devices = collector.Collect();
  EXPECT_FALSE(devices.ok());
  EXPECT_THAT(std::string(devices.status().message()), HasSubstr("absent"));
}

TEST_F(DevicedirCollectorTest, FactoryNeedsAPath) {
  DevicedirOptions options;
  EXPECT_FALSE(NewDevicedirCollector(options, NodeRoots{}).ok());
  options.path = dir_.path();
  auto collector = NewDevicedirCollector(options, NodeRoots{});
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
  DevicedirCollector collector(dir_.path(), geteuid());
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
  DevicedirCollector collector(dir_.path(), geteuid());
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

TEST_F(DevicedirCollectorTest, APassReadsOnlyTheDevicesWrittenSinceTheLast) {
  for (const char* id : {"w0", "w1", "w2"}) {
    WriteFile(Dev(id, "resource"), "example.com/widget");
    WriteFile(Dev(id, "metrics.prom"), "devscope_device_power_watts 1\n");
  }
  DevicedirCollector collector(dir_.path(), geteuid(), {}, absl::InfiniteDuration());
  ASSERT_TRUE(collector.Collect().ok());
  EXPECT_EQ(collector.directories_read(), 3u);
  // Nothing written: nothing read, the same devices.
  auto devices = collector.Collect();
  ASSERT_TRUE(devices.ok());
  EXPECT_EQ(collector.directories_read(), 0u);
  ASSERT_THAT(*devices, SizeIs(3));
  // One device's telemetry rewritten (no DrainWatch: Collect reads the events itself).
  WriteFile(Dev("w1", "metrics.prom"), "devscope_device_power_watts 7\n");
  WriteFile(Dev("w1", ".scratch"), "not a layout file");
  devices = collector.Collect();
  ASSERT_TRUE(devices.ok());
  EXPECT_EQ(collector.directories_read(), 1u);
  ASSERT_THAT(*devices, SizeIs(3));
  EXPECT_EQ((*devices)[1].samples[0].value, 7);
  EXPECT_EQ((*devices)[0].samples[0].value, 1);
  // A device directory removed, and one added: everything is read again.
  std::filesystem::remove_all(absl::StrCat(dir_.path(), "/w0"));
  WriteFile(Dev("w3", "resource"), "example.com/widget");
  devices = collector.Collect();
  ASSERT_TRUE(devices.ok());
  EXPECT_EQ(collector.directories_read(), 3u);
  ASSERT_THAT(*devices, SizeIs(3));
  EXPECT_EQ((*devices)[0].info.id, "w1");
  EXPECT_EQ((*devices)[2].info.id, "w3");
}

TEST_F(DevicedirCollectorTest, EveryDeviceIsReadAgainAfterTheFullRescanInterval) {
  WriteFile(Dev("w0", "resource"), "example.com/widget");
  DevicedirCollector collector(dir_.path(), geteuid(), {}, absl::ZeroDuration());
  ASSERT_TRUE(collector.Collect().ok());
  ASSERT_TRUE(collector.Collect().ok());
  EXPECT_EQ(collector.directories_read(), 1u);
}

TEST_F(DevicedirCollectorTest, ProblemsOfDevicesNotReadAgainAreStillCounted) {
  WriteFile(Dev("w0", "resource"), "example.com/widget");
  WriteFile(Dev("w0", "metrics.prom"), "bad_metric 1\n");
  WriteFile(Dev("bad:name", "resource"), "example.com/widget");
  DevicedirCollector collector(dir_.path(), geteuid(), {}, absl::InfiniteDuration());
  ASSERT_TRUE(collector.Collect().ok());
  EXPECT_EQ(collector.parse_errors(), 2u);
  ASSERT_TRUE(collector.Collect().ok());
  EXPECT_EQ(collector.directories_read(), 0u);
  EXPECT_EQ(collector.parse_errors(), 2u);
}

}  // namespace
}  // namespace devscope
