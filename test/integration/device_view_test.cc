// The real binary with a devicedir of 1,024 devices and 250 pods in pod-resources: every
// device's telemetry shows with the right holder labels, free devices without them, and the
// scrape passes promtool. Also `devscope demo` end to end.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "demo/standin_pod_resources.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/integration/devscope_process.h"

namespace devscope {
namespace {

void WriteFile(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

TEST(DeviceViewTest, ThousandDevicesJoinedWithTheirHolders) {
  const std::string dir = MakeTempDir();
  const std::string devices = dir + "/devices";
  mkdir(devices.c_str(), 0755);
  // 250 pods x 4 containers x 1 device: IDs dev-P-C-0; 24 more devices nobody holds.
  auto fleet = MakeFleet(250, 4, 1);
  std::map<std::string, std::string> holder;  // device -> "pod/container"
  for (const auto& pod : fleet) {
    for (const auto& c : pod.containers()) {
      holder[c.devices(0).device_ids(0)] = absl::StrCat(pod.name(), "/", c.name());
    }
  }
  std::set<std::string> ids;
  for (const auto& [id, _] : holder) ids.insert(id);
  for (int i = 0; i < 24; ++i) ids.insert(absl::StrCat("spare-", i));
  int n = 0;
  for (const std::string& id : ids) {
    const std::string d = devices + "/" + id;
    mkdir(d.c_str(), 0755);
    WriteFile(d + "/resource", "example.com/dev\n");
    WriteFile(d + "/numa_node", absl::StrCat(n % 2, "\n"));
    WriteFile(d + "/metrics.prom", absl::StrCat("devscope_device_temperature_celsius ", 30 + n % 50,
                                                "\n# TYPE devscope_device_energy_joules_total "
                                                "counter\ndevscope_device_energy_joules_total ",
                                                n * 10, "\n"));
    ++n;
  }
  ASSERT_EQ(ids.size(), 1024u);
  auto standin = PodResourcesStandin::Start(dir + "/kubelet.sock");
  ASSERT_TRUE(standin.ok()) << standin.status();
  (*standin)->SetPods(fleet);
  auto process = DevscopeProcess::Start(
      {"--kubelet.pod-resources-socket=" + dir + "/kubelet.sock",
       "--web.listen-address=127.0.0.1:0", "--pod-resources.interval=200ms", "--no-device-plugin",
       "--collector.devicedir.path=" + devices, DevicedirOwnerFlag(), "--path.devfs=" + dir,
       "--no-collector.nvml", "--no-collector.drm", "--no-collector.netdev"});
  ASSERT_TRUE(process.ok()) << process.status();

  const std::string body = ScrapeUntil(
      **process,
      [](const std::string& b) {
        return FindSamples(b, "devscope_device_temperature_celsius").size() == 1024 &&
               FindSamples(b, "devscope_container_device_info").size() == 1000;
      },
      absl::Seconds(30));
  EXPECT_EQ(PromtoolCheck(body), "");
  const auto temperatures = FindSamples(body, "devscope_device_temperature_celsius");
  ASSERT_EQ(temperatures.size(), 1024u);
  int held = 0;
  for (const auto& s : temperatures) {
    const std::string& id = s.labels.at("device");
    EXPECT_EQ(s.labels.at("resource"), "example.com/dev");
    auto it = holder.find(id);
    if (it == holder.end()) {
      EXPECT_EQ(s.labels.count("pod"), 0u) << id;
      continue;
    }
    ++held;
    EXPECT_EQ(s.labels.at("namespace"), "bulk");
    EXPECT_EQ(absl::StrCat(s.labels.at("pod"), "/", s.labels.at("container")), it->second);
  }
  EXPECT_EQ(held, 1000);
  EXPECT_EQ(FindSamples(body, "devscope_device_info", {{"collector", "devicedir"}}).size(), 1024u);
  const auto up = FindSamples(body, "devscope_collector_up", {{"collector", "devicedir"}});
  ASSERT_EQ(up.size(), 1u);
  EXPECT_EQ(up[0].value, 1);
  EXPECT_EQ((*process)->Stop(), 0);
  RemoveTree(dir);
}

TEST(DeviceViewTest, DraClaimDevicesCarryTheirHoldersAndClaims) {
  const std::string dir = MakeTempDir();
  const std::string devices = dir + "/devices";
  mkdir(devices.c_str(), 0755);
  const auto add_device = [&](const std::string& id, const std::string& info, int celsius) {
    const std::string d = devices + "/" + id;
    mkdir(d.c_str(), 0755);
    WriteFile(d + "/resource", "example.com/widget\n");
    WriteFile(d + "/info", info);
    WriteFile(d + "/metrics.prom",
              absl::StrCat("devscope_device_temperature_celsius ", celsius, "\n"));
  };
  // widget-0 stands for the example driver's gpu-0; widget-1 is named by the UUID in a CDI name.
  add_device("widget-0", "aliases=gpu.example.com/gpu-0\n", 40);
  add_device("widget-1", "uuid=GPU-8c4b5e7a-1111-2222-3333-444455556666\n", 41);
  add_device("widget-2", "", 42);
  add_device("widget-3", "", 43);  // named by a configured alias rule
  WriteFile(dir + "/config.yaml",
            "dra:\n  aliases:\n    dra.example.net: {device_pattern: 'w(\\d+)', id: "
            "'widget-\\1'}\n");
  auto standin = PodResourcesStandin::Start(dir + "/kubelet.sock");
  ASSERT_TRUE(standin.ok()) << standin.status();
  (*standin)->SetPods({MakePod(
      "ml", "trainer-0",
      {MakeContainer(
          "trainer", {}, {}, {},
          {MakeClaim("ml", "gpus", "gpu.example.com", "node-a", "gpu-0"),
           MakeClaim("ml", "vendor-gpu", "gpu.vendor.example", "node-a", "first", std::nullopt,
                     {"gpu.vendor.example/gpu=GPU-8c4b5e7a-1111-2222-3333-444455556666"}),
           MakeClaim("ml", "gpus", "gpu.example.com", "node-a", "gpu-7"),
           MakeClaim("ml", "nics", "dra.example.net", "node-a", "w3")})})});
  auto process = DevscopeProcess::Start(
      {"--kubelet.pod-resources-socket=" + dir + "/kubelet.sock",
       "--web.listen-address=127.0.0.1:0", "--pod-resources.interval=200ms", "--no-device-plugin",
       "--collector.devicedir.path=" + devices, DevicedirOwnerFlag(), "--path.devfs=" + dir,
       "--no-collector.nvml", "--no-collector.drm", "--no-collector.netdev",
       "--config.file=" + dir + "/config.yaml"});
  ASSERT_TRUE(process.ok()) << process.status();
  const std::string body = ScrapeUntil(
      **process,
      [](const std::string& b) {
        return FindSamples(b, "devscope_device_temperature_celsius", {{"pod", "trainer-0"}})
                   .size() == 3;
      },
      absl::Seconds(30));
  EXPECT_EQ(PromtoolCheck(body), "");
  const auto held = [&](const std::string& device) {
    return FindSamples(body, "devscope_device_temperature_celsius", {{"device", device}});
  };
  ASSERT_EQ(held("widget-0").size(), 1u);
  EXPECT_EQ(held("widget-0")[0].labels,
            (std::map<std::string, std::string>{{"resource", "example.com/widget"},
                                                {"device", "widget-0"},
                                                {"namespace", "ml"},
                                                {"pod", "trainer-0"},
                                                {"container", "trainer"},
                                                {"claim_namespace", "ml"},
                                                {"claim_name", "gpus"}}));
  ASSERT_EQ(held("widget-1").size(), 1u);
  EXPECT_EQ(held("widget-1")[0].labels.at("claim_name"), "vendor-gpu");
  ASSERT_EQ(held("widget-3").size(), 1u);
  EXPECT_EQ(held("widget-3")[0].labels.at("claim_name"), "nics");
  ASSERT_EQ(held("widget-2").size(), 1u);
  EXPECT_EQ(held("widget-2")[0].labels.count("pod"), 0u);  // gpu-7 is not guessed to be it
  const auto healthy = FindSamples(body, "devscope_device_healthy",
                                   {{"device", "widget-0"}, {"claim_name", "gpus"}});
  EXPECT_EQ(healthy.size(), 1u);
  const auto unmatched = FindSamples(body, "devscope_dynamic_resource_unmatched_devices");
  ASSERT_EQ(unmatched.size(), 1u);
  EXPECT_EQ(unmatched[0].labels.at("driver"), "gpu.example.com");
  EXPECT_EQ(unmatched[0].value, 1);
  EXPECT_EQ((*process)->Stop(), 0);
  const std::string log = (*process)->Stderr();
  // Once, though every render met it.
  size_t logged = 0;
  for (size_t at = log.find("DRA device matches no tracked device"); at != std::string::npos;
       at = log.find("DRA device matches no tracked device", at + 1)) {
    ++logged;
  }
  EXPECT_EQ(logged, 1u) << log;
  EXPECT_THAT(log, ::testing::HasSubstr("device=gpu-7"));
  RemoveTree(dir);
}

// The knobs that cut series (docs/scale.md) through the real binary: holder labels off, and a
// metric allow-list for the devicedir collector, from flags and from the config file.
TEST(DeviceViewTest, CardinalityKnobsFromFlagsAndConfigFile) {
  const std::string dir = MakeTempDir();
  const std::string devices = dir + "/devices";
  for (const char* id : {"dev-0", "dev-1"}) {
    const std::string d = absl::StrCat(devices, "/", id);
    std::filesystem::create_directories(d);
    WriteFile(d + "/resource", "example.com/dev\n");
    WriteFile(d + "/metrics.prom",
              "devscope_device_temperature_celsius 40\ndevscope_device_power_watts 100\n"
              "devscope_device_utilization_ratio 0.5\n");
  }
  auto standin = PodResourcesStandin::Start(dir + "/kubelet.sock");
  ASSERT_TRUE(standin.ok()) << standin.status();
  // dev-0 shared by two containers.
  (*standin)->SetPods({MakePod("ml", "trainer",
                               {MakeContainer("a", {MakeDevices("example.com/dev", {"dev-0"})}),
                                MakeContainer("b", {MakeDevices("example.com/dev", {"dev-0"})})})});
  WriteFile(dir + "/config.yaml",
            "collectors:\n  devicedir:\n    metrics: devscope_device_power_watts, "
            "devscope_device_utilization_ratio\n");
  const std::vector<std::string> common = {
      "--kubelet.pod-resources-socket=" + dir + "/kubelet.sock",
      "--web.listen-address=127.0.0.1:0",
      "--no-device-plugin",
      "--collector.devicedir.path=" + devices,
      DevicedirOwnerFlag(),
      "--no-collector.nvml",
      "--no-collector.drm",
      "--no-collector.netdev",
      "--path.devfs=" + dir};
  const auto held = [](const std::string& body) {
    return body.find("pod=\"trainer\"") != std::string::npos &&
           body.find("devscope_device_power_watts") != std::string::npos;
  };

  std::vector<std::string> flags = common;
  flags.push_back("--no-metrics.holder-labels");
  flags.push_back("--collector.devicedir.metrics=devscope_device_power_watts");
  auto process = DevscopeProcess::Start(flags);
  ASSERT_TRUE(process.ok()) << process.status();
  std::string body = ScrapeUntil(**process, held, absl::Seconds(20));
  EXPECT_EQ(PromtoolCheck(body), "");
  EXPECT_EQ(FindSamples(body, "devscope_device_power_watts", {{"device", "dev-0"}}).size(), 1u);
  EXPECT_TRUE(FindSamples(body, "devscope_device_power_watts", {{"pod", "trainer"}}).empty());
  EXPECT_TRUE(FindSamples(body, "devscope_device_temperature_celsius").empty());
  EXPECT_TRUE(FindSamples(body, "devscope_device_utilization_ratio").empty());
  EXPECT_EQ(FindSamples(body, "devscope_device_info").size(), 2u);
  EXPECT_EQ(FindSamples(body, "devscope_container_device_info", {{"device", "dev-0"}}).size(), 2u);
  (*process)->Stop();

  // The file's list, holder labels on (the default): a series per holder.
  flags = common;
  flags.push_back("--config.file=" + dir + "/config.yaml");
  process = DevscopeProcess::Start(flags);
  ASSERT_TRUE(process.ok()) << process.status();
  body = ScrapeUntil(**process, held, absl::Seconds(20));
  EXPECT_EQ(FindSamples(body, "devscope_device_power_watts", {{"device", "dev-0"}}).size(), 2u);
  EXPECT_EQ(FindSamples(body, "devscope_device_utilization_ratio", {{"device", "dev-1"}}).size(),
            1u);
  EXPECT_TRUE(FindSamples(body, "devscope_device_temperature_celsius").empty());
  (*process)->Stop();

  // A name that is not a device metric is a bad command line: exit 2, one line.
  const RunResult bad = RunDevscope(
      {"--collector.devicedir.path=" + devices, "--collector.devicedir.metrics=node_load1"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.stderr_text, ::testing::HasSubstr("--collector.devicedir.metrics"));
  (*standin)->Stop();
  RemoveTree(dir);
}

TEST(DemoTest, PodsHoldDevicesThePluginHandedOut) {
  auto process = DevscopeProcess::Start({"demo", "--web.listen-address=127.0.0.1:0"});
  ASSERT_TRUE(process.ok()) << process.status();
  // The demo admits four pods through its plugin; their devices carry telemetry and holders.
  const std::string body = ScrapeUntil(
      **process,
      [](const std::string& b) {
        return FindSamples(b, "devscope_container_device_info").size() >= 5 &&
               !FindSamples(b, "devscope_device_utilization_ratio", {{"pod", "trainer-0"}}).empty();
      },
      absl::Seconds(30));
  EXPECT_EQ(PromtoolCheck(body), "");
  const auto held = FindSamples(body, "devscope_container_device_info", {{"pod", "trainer-0"}});
  ASSERT_EQ(held.size(), 2u);
  // Packed on one NUMA node by GetPreferredAllocation.
  EXPECT_EQ(held[0].labels.at("numa_node"), held[1].labels.at("numa_node"));
  EXPECT_FALSE(
      FindSamples(body, "devscope_device_utilization_ratio", {{"pod", "trainer-0"}}).empty());
  const auto registered =
      FindSamples(body, "devscope_device_plugin_registered", {{"resource", "example.com/widget"}});
  ASSERT_EQ(registered.size(), 1u);
  EXPECT_EQ(registered[0].value, 1);
  const auto allocatable =
      FindSamples(body, "devscope_node_allocatable_devices", {{"resource", "example.com/widget"}});
  ASSERT_EQ(allocatable.size(), 1u);
  EXPECT_EQ(allocatable[0].value, 8);
  EXPECT_EQ((*process)->HttpGet("/readyz").status, 200);
  EXPECT_EQ((*process)->Stop(), 0);
}

}  // namespace
}  // namespace devscope
