// The nvml collector's series as /metrics serves them: a GPU with every counter (and a MIG device)
// from the fake libnvidia-ml, through the metrics renderer, passes `promtool check metrics` and
// names each family with its type and help.
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/snapshot_store.h"
#include "exporter/metrics_renderer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/collectors/nvml_fixture.h"
#include "test/integration/devscope_process.h"

namespace devscope {
namespace {

using ::testing::HasSubstr;

using NvmlExpositionTest = NvmlFixture;

TEST_F(NvmlExpositionTest, EveryNewFamilyPassesPromtool) {
  const int gpu = fake_.add_gpu("GPU-1", "NVIDIA H100 80GB HBM3", "00000000:3B:00.0");
  for (auto [attr, value] : std::initializer_list<std::pair<const char*, unsigned long long>>{
           {"util_gpu", 87},         {"util_memory", 35},         {"util_encoder", 12},
           {"util_decoder", 3},      {"mem_total", 80ULL << 30},  {"mem_reserved", 1ULL << 28},
           {"mem_used", 1ULL << 30}, {"mem_temperature", 70},     {"clock_sm", 1980},
           {"clock_mem", 2619},      {"max_clock_sm", 1980},      {"max_clock_mem", 2619},
           {"clock_events", 0x44},   {"pcie_replays", 7},         {"pcie_tx_kb", 10},
           {"pcie_rx_kb", 20},       {"retired_sbe", 0},          {"retired_dbe", 0},
           {"retired_pending", 0},   {"remapped_correctable", 1}, {"remapped_uncorrectable", 0},
           {"remap_pending", 0},     {"remap_failed", 0},         {"power_limit_mw", 700000}}) {
    ASSERT_EQ(fake_.set(gpu, attr, value), 0) << attr;
  }
  fake_.set_nvlink(gpu, 0, 1);
  for (const char* counter :
       {"replay", "recovery", "crc_flit", "crc_data", "ecc_data", "tx_kib", "rx_kib"}) {
    fake_.set_nvlink_counter(gpu, 0, counter, 5);
  }
  fake_.set_driver_version("550.54.15", 12040);
  const int mig = fake_.add_mig(gpu, "MIG-1", "MIG 1g.10gb", 1);
  fake_.set(mig, "mem_total", 10ULL << 30);
  fake_.set(mig, "mem_used", 0);
  auto collector = Make();
  ASSERT_NE(collector, nullptr);
  fake_.inject_xid(gpu, 79, NVML_INVALID_INSTANCE_ID);
  const auto reports = CollectUntil(*collector, [](const std::vector<DeviceReport>& r) {
    return Has(*Find(r, "GPU-1"), "devscope_device_last_xid_timestamp_seconds");
  });

  auto snapshot = std::make_shared<DeviceSnapshot>();
  CollectorReport report;
  report.collector = "nvml";
  report.up = true;
  report.time = absl::Now();
  report.devices = reports;
  snapshot->collectors.push_back(std::move(report));
  SnapshotStore<DeviceSnapshot> devices;
  devices.Publish(std::move(snapshot));
  MetricsRenderer renderer(nullptr, &devices, {});
  const std::string text = *renderer.Render();
  EXPECT_EQ(PromtoolCheck(text), "") << text;

  const std::pair<const char*, const char*> families[] = {
      {"devscope_device_clock_hertz", "gauge"},
      {"devscope_device_clock_max_hertz", "gauge"},
      {"devscope_device_clock_event_reason_active", "gauge"},
      {"devscope_device_memory_temperature_celsius", "gauge"},
      {"devscope_device_memory_copy_utilization_ratio", "gauge"},
      {"devscope_device_encoder_utilization_ratio", "gauge"},
      {"devscope_device_decoder_utilization_ratio", "gauge"},
      {"devscope_device_memory_free_bytes", "gauge"},
      {"devscope_device_memory_reserved_bytes", "gauge"},
      {"devscope_device_pcie_replays_total", "counter"},
      {"devscope_device_pcie_transmit_bytes_per_second", "gauge"},
      {"devscope_device_pcie_receive_bytes_per_second", "gauge"},
      {"devscope_device_nvlink_transmit_bytes_total", "counter"},
      {"devscope_device_nvlink_receive_bytes_total", "counter"},
      {"devscope_device_nvlink_errors_total", "counter"},
      {"devscope_device_retired_pages", "gauge"},
      {"devscope_device_retired_pages_pending", "gauge"},
      {"devscope_device_remapped_rows", "gauge"},
      {"devscope_device_row_remap_pending", "gauge"},
      {"devscope_device_row_remap_failed", "gauge"},
      {"devscope_device_power_limit_watts", "gauge"},
      {"devscope_device_driver_info", "gauge"},
      {"devscope_device_xid_errors_total", "counter"},
      {"devscope_device_last_xid_timestamp_seconds", "gauge"},
  };
  for (auto [name, type] : families) {
    EXPECT_THAT(text, HasSubstr(absl::StrCat("# TYPE ", name, " ", type, "\n"))) << name;
    // Its own help, not the renderer's generic one.
    EXPECT_THAT(text, HasSubstr(absl::StrCat("# HELP ", name, " "))) << name;
    EXPECT_THAT(text, ::testing::Not(HasSubstr(absl::StrCat(
                          "# HELP ", name, " Device telemetry reported by a collector."))))
        << name;
  }
  EXPECT_THAT(text, HasSubstr("devscope_device_clock_event_reason_active{resource=\"nvidia.com/"
                              "gpu\",device=\"GPU-1\",reason=\"hw_thermal_slowdown\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("devscope_device_xid_errors_total{resource=\"nvidia.com/gpu\","
                              "device=\"GPU-1\",xid=\"79\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("devscope_device_nvlink_errors_total{resource=\"nvidia.com/gpu\","
                              "device=\"GPU-1\",link=\"0\",kind=\"crc_flit\"} 5\n"));
  EXPECT_THAT(text,
              HasSubstr("devscope_device_driver_info{resource=\"nvidia.com/gpu\",device=\"MIG-"
                        "1\",driver_version=\"550.54.15\",cuda_driver_version=\"12.4\"} 1\n"));
}

}  // namespace
}  // namespace devscope
