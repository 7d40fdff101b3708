// The counters users alert on, from the fake libnvidia-ml: each in base units; absent (never 0)
// where NVML answers NOT_SUPPORTED, where a call fails (for that GPU and that counter only) and
// where an older driver lacks the call; the driver's versions; XIDs per code and the latest.
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/collectors/nvml_fixture.h"

namespace devscope {
namespace {

constexpr char kGpu0[] = "GPU-11111111-2222-3333-4444-555555555555";
constexpr char kGpu1[] = "GPU-66666666-7777-8888-9999-000000000000";
constexpr char kMig1[] = "MIG-aaaaaaaa-0000-0000-0000-000000000001";

constexpr double kMiB = 1 << 20;

// Every series the counters of issue 8 add, by name.
const char* const kNewSeries[] = {
    "devscope_device_clock_hertz",
    "devscope_device_clock_max_hertz",
    "devscope_device_clock_event_reason_active",
    "devscope_device_memory_temperature_celsius",
    "devscope_device_encoder_utilization_ratio",
    "devscope_device_decoder_utilization_ratio",
    "devscope_device_memory_copy_utilization_ratio",
    "devscope_device_memory_free_bytes",
    "devscope_device_memory_reserved_bytes",
    "devscope_device_pcie_replays_total",
    "devscope_device_pcie_transmit_bytes_per_second",
    "devscope_device_pcie_receive_bytes_per_second",
    "devscope_device_nvlink_transmit_bytes_total",
    "devscope_device_nvlink_receive_bytes_total",
    "devscope_device_nvlink_errors_total",
    "devscope_device_retired_pages",
    "devscope_device_retired_pages_pending",
    "devscope_device_remapped_rows",
    "devscope_device_row_remap_pending",
    "devscope_device_row_remap_failed",
    "devscope_device_power_limit_watts",
    "devscope_device_driver_info",
    "devscope_device_xid_errors_total",
    "devscope_device_last_xid_timestamp_seconds",
};

class NvmlCountersTest : public NvmlFixture {
 protected:
  // An H100-like GPU with every counter set.
  int AddGpu(const char* uuid, const char* bus_id) {
    const int slot = fake_.add_gpu(uuid, "NVIDIA H100 80GB HBM3", bus_id);
    const std::pair<const char*, unsigned long long> values[] = {
        {"util_gpu", 87},
        {"util_memory", 35},
        {"util_encoder", 12},
        {"util_decoder", 3},
        {"mem_total", 81559ULL << 20},
        {"mem_reserved", 329ULL << 20},
        {"mem_used", 1024ULL << 20},
        {"temperature", 61},
        {"mem_temperature", 70},
        {"clock_sm", 1980},
        {"clock_mem", 2619},
        {"max_clock_sm", 1980},
        {"max_clock_mem", 2619},
        // sw_power_cap and hw_thermal_slowdown now; display_clock_setting unsupported.
        {"clock_events", 0x4 | 0x40},
        {"clock_events_supported", 0xff},
        {"power_mw", 650250},
        {"power_limit_mw", 700000},
        {"pcie_replays", 7},
        {"pcie_tx_kb", 1000},
        {"pcie_rx_kb", 2000},
        {"retired_sbe", 2},
        {"retired_dbe", 1},
        {"retired_pending", 1},
        {"remapped_correctable", 3},
        {"remapped_uncorrectable", 1},
        {"remap_pending", 1},
        {"remap_failed", 0},
    };
    for (auto [attr, value] : values) EXPECT_EQ(fake_.set(slot, attr, value), 0) << attr;
    // Links 0 and 1 active, link 2 down: its counters are not read.
    fake_.set_nvlink(slot, 0, 1);
    fake_.set_nvlink(slot, 1, 1);
    fake_.set_nvlink(slot, 2, 0);
    for (unsigned link = 0; link < 3; ++link) {
      fake_.set_nvlink_counter(slot, link, "replay", 10 + link);
      fake_.set_nvlink_counter(slot, link, "recovery", 20 + link);
      fake_.set_nvlink_counter(slot, link, "crc_flit", 30 + link);
      fake_.set_nvlink_counter(slot, link, "crc_data", 40 + link);
      fake_.set_nvlink_counter(slot, link, "ecc_data", 50 + link);
      fake_.set_nvlink_counter(slot, link, "tx_kib", 1000 * (link + 1));
      fake_.set_nvlink_counter(slot, link, "rx_kib", 2000 * (link + 1));
    }
    return slot;
  }

  DeviceReport CollectOne(const std::string& id) {
    auto collector = Make();
    EXPECT_NE(collector, nullptr);
    if (collector == nullptr) return {};
    const auto reports = Collect(*collector);
    const DeviceReport* report = Find(reports, id);
    EXPECT_NE(report, nullptr) << id;
    return report != nullptr ? *report : DeviceReport{};
  }
};

TEST_F(NvmlCountersTest, EveryCounterInBaseUnits) {
  AddGpu(kGpu0, "00000000:3B:00.0");
  fake_.set_driver_version("550.54.15", 12040);
  const DeviceReport r = CollectOne(kGpu0);
  EXPECT_EQ(Value(r, "devscope_device_clock_hertz", {{"clock", "sm"}}), 1980e6);
  EXPECT_EQ(Value(r, "devscope_device_clock_hertz", {{"clock", "memory"}}), 2619e6);
  EXPECT_EQ(Value(r, "devscope_device_clock_max_hertz", {{"clock", "sm"}}), 1980e6);
  EXPECT_EQ(Value(r, "devscope_device_clock_max_hertz", {{"clock", "memory"}}), 2619e6);
  const auto reason = [&](const char* name) {
    return Value(r, "devscope_device_clock_event_reason_active", {{"reason", name}});
  };
  EXPECT_EQ(reason("gpu_idle"), 0);
  EXPECT_EQ(reason("applications_clocks_setting"), 0);
  EXPECT_EQ(reason("sw_power_cap"), 1);
  EXPECT_EQ(reason("hw_slowdown"), 0);
  EXPECT_EQ(reason("sync_boost"), 0);
  EXPECT_EQ(reason("sw_thermal_slowdown"), 0);
  EXPECT_EQ(reason("hw_thermal_slowdown"), 1);
  EXPECT_EQ(reason("hw_power_brake_slowdown"), 0);
  EXPECT_EQ(reason("display_clock_setting"), std::nullopt);  // not among the supported reasons
  EXPECT_EQ(Value(r, "devscope_device_temperature_celsius"), 61);
  EXPECT_EQ(Value(r, "devscope_device_memory_temperature_celsius"), 70);
  EXPECT_DOUBLE_EQ(*Value(r, "devscope_device_utilization_ratio"), 0.87);
  EXPECT_DOUBLE_EQ(*Value(r, "devscope_device_memory_copy_utilization_ratio"), 0.35);
  EXPECT_DOUBLE_EQ(*Value(r, "devscope_device_encoder_utilization_ratio"), 0.12);
  EXPECT_DOUBLE_EQ(*Value(r, "devscope_device_decoder_utilization_ratio"), 0.03);
  // The second version of the memory info: used without the reserve, as nvidia-smi shows it.
  EXPECT_EQ(Value(r, "devscope_device_memory_total_bytes"), 81559 * kMiB);
  EXPECT_EQ(Value(r, "devscope_device_memory_reserved_bytes"), 329 * kMiB);
  EXPECT_EQ(Value(r, "devscope_device_memory_used_bytes"), 1024 * kMiB);
  EXPECT_EQ(Value(r, "devscope_device_memory_free_bytes"), (81559 - 329 - 1024) * kMiB);
  EXPECT_DOUBLE_EQ(*Value(r, "devscope_device_power_watts"), 650.25);
  EXPECT_EQ(Value(r, "devscope_device_power_limit_watts"), 700);
  EXPECT_EQ(Value(r, "devscope_device_pcie_replays_total"), 7);
  EXPECT_EQ(Value(r, "devscope_device_pcie_transmit_bytes_per_second"), 1000 * 1024);
  EXPECT_EQ(Value(r, "devscope_device_pcie_receive_bytes_per_second"), 2000 * 1024);
  EXPECT_EQ(Value(r, "devscope_device_retired_pages", {{"cause", "single_bit_ecc"}}), 2);
  EXPECT_EQ(Value(r, "devscope_device_retired_pages", {{"cause", "double_bit_ecc"}}), 1);
  EXPECT_EQ(Value(r, "devscope_device_retired_pages_pending"), 1);
  EXPECT_EQ(Value(r, "devscope_device_remapped_rows", {{"cause", "correctable"}}), 3);
  EXPECT_EQ(Value(r, "devscope_device_remapped_rows", {{"cause", "uncorrectable"}}), 1);
  EXPECT_EQ(Value(r, "devscope_device_row_remap_pending"), 1);
  EXPECT_EQ(Value(r, "devscope_device_row_remap_failed"), 0);
  EXPECT_EQ(Value(r, "devscope_device_driver_info",
                  {{"driver_version", "550.54.15"}, {"cuda_driver_version", "12.4"}}),
            1);
  for (const std::string link : {"0", "1"}) {
    const int n = std::stoi(link);
    EXPECT_EQ(Value(r, "devscope_device_nvlink_transmit_bytes_total", {{"link", link}}),
              1000.0 * (n + 1) * 1024);
    EXPECT_EQ(Value(r, "devscope_device_nvlink_receive_bytes_total", {{"link", link}}),
              2000.0 * (n + 1) * 1024);
    EXPECT_EQ(Value(r, "devscope_device_nvlink_errors_total", {{"link", link}, {"kind", "replay"}}),
              10 + n);
    EXPECT_EQ(
        Value(r, "devscope_device_nvlink_errors_total", {{"link", link}, {"kind", "recovery"}}),
        20 + n);
    EXPECT_EQ(
        Value(r, "devscope_device_nvlink_errors_total", {{"link", link}, {"kind", "crc_flit"}}),
        30 + n);
    EXPECT_EQ(
        Value(r, "devscope_device_nvlink_errors_total", {{"link", link}, {"kind", "crc_data"}}),
        40 + n);
    EXPECT_EQ(
        Value(r, "devscope_device_nvlink_errors_total", {{"link", link}, {"kind", "ecc_data"}}),
        50 + n);
  }
  // Link 2 is down: no series of it.
  EXPECT_FALSE(Value(r, "devscope_device_nvlink_transmit_bytes_total", {{"link", "2"}}));
  EXPECT_FALSE(
      Value(r, "devscope_device_nvlink_errors_total", {{"link", "2"}, {"kind", "replay"}}));
  // Counters are named _total, and only they.
  for (const Sample& sample : r.samples) {
    const bool total = absl::EndsWith(sample.name, "_total");
    EXPECT_EQ(sample.kind, total ? Sample::Kind::kCounter : Sample::Kind::kGauge) << sample.name;
  }
}

TEST_F(NvmlCountersTest, ClockEventReasonsWithoutASupportedSetAreAllListed) {
  const int slot = fake_.add_gpu(kGpu0, "Tesla T4", "00000000:65:00.0");
  fake_.set(slot, "clock_events", 0x1);  // idle; the supported set is NOT_SUPPORTED
  const DeviceReport r = CollectOne(kGpu0);
  int series = 0;
  for (const Sample& sample : r.samples) {
    if (sample.name != "devscope_device_clock_event_reason_active") continue;
    ++series;
    EXPECT_EQ(sample.value, sample.labels[0].second == "gpu_idle" ? 1 : 0);
  }
  EXPECT_EQ(series, 9);
}

TEST_F(NvmlCountersTest, NotSupportedCountersAreAbsentOnAGpuAndOnAMigDevice) {
  // NVML answers NOT_SUPPORTED to everything the test does not set.
  const int gpu = fake_.add_gpu(kGpu0, "Tesla T4", "00000000:65:00.0");
  const int mig = fake_.add_mig(gpu, kMig1, "MIG 1g.10gb", 1);
  fake_.set(mig, "mem_total", 10ULL << 30);
  fake_.set(mig, "mem_used", 0);
  auto collector = Make();
  ASSERT_NE(collector, nullptr);
  const auto reports = Collect(*collector);
  ASSERT_EQ(reports.size(), 2u);
  for (const DeviceReport& r : reports) {
    for (const char* name : kNewSeries) {
      if (std::string(name) == "devscope_device_memory_free_bytes" && r.info.id == kMig1) continue;
      if (std::string(name) == "devscope_device_memory_reserved_bytes" && r.info.id == kMig1) {
        continue;
      }
      EXPECT_FALSE(Has(r, name)) << r.info.id << " " << name;
    }
    EXPECT_TRUE(r.processes.empty());
  }
  // What the MIG device does have is there, a real zero included.
  const DeviceReport* m = Find(reports, kMig1);
  EXPECT_EQ(Value(*m, "devscope_device_memory_used_bytes"), 0);
  EXPECT_EQ(Value(*m, "devscope_device_memory_free_bytes"), 10.0 * (1 << 30));
  EXPECT_EQ(Value(*m, "devscope_device_memory_reserved_bytes"), 0);
}

TEST_F(NvmlCountersTest, AFailingCallLosesOnlyThatCounterOfThatGpu) {
  const int gpu0 = AddGpu(kGpu0, "00000000:3B:00.0");
  AddGpu(kGpu1, "00000000:86:00.0");
  // GPU 0's SM clock, memory temperature (a field of its own in a call that succeeds) and
  // remapped rows fail; everything else of it and all of GPU 1 stays.
  fake_.fail(gpu0, "clock_sm", NVML_ERROR_UNKNOWN);
  fake_.fail(gpu0, "mem_temperature", NVML_ERROR_UNKNOWN);
  fake_.fail(gpu0, "remapped_correctable", NVML_ERROR_NO_PERMISSION);
  auto collector = Make();
  ASSERT_NE(collector, nullptr);
  for (int pass = 0; pass < 2; ++pass) {  // the second pass logs nothing new, and is the same
    const auto reports = Collect(*collector);
    ASSERT_EQ(reports.size(), 2u);
    const DeviceReport& r0 = *Find(reports, kGpu0);
    const DeviceReport& r1 = *Find(reports, kGpu1);
    EXPECT_FALSE(Value(r0, "devscope_device_clock_hertz", {{"clock", "sm"}}));
    EXPECT_EQ(Value(r0, "devscope_device_clock_max_hertz", {{"clock", "sm"}}), 1980e6);
    EXPECT_EQ(Value(r0, "devscope_device_clock_hertz", {{"clock", "memory"}}), 2619e6);
    EXPECT_FALSE(Has(r0, "devscope_device_memory_temperature_celsius"));
    EXPECT_TRUE(Has(r0, "devscope_device_nvlink_transmit_bytes_total"));
    EXPECT_FALSE(Has(r0, "devscope_device_remapped_rows"));
    EXPECT_FALSE(Has(r0, "devscope_device_row_remap_pending"));
    EXPECT_TRUE(Has(r0, "devscope_device_retired_pages"));
    EXPECT_TRUE(r0.health.healthy);
    for (const char* name : kNewSeries) {
      const std::string n = name;
      if (n == "devscope_device_driver_info" || n.find("xid") != std::string::npos) continue;
      EXPECT_TRUE(Has(r1, name)) << name;
    }
  }
}

TEST_F(NvmlCountersTest, ALostGpuMidPassIsReportedLost) {
  const int slot = AddGpu(kGpu0, "00000000:3B:00.0");
  auto collector = Make();
  ASSERT_NE(collector, nullptr);
  ASSERT_TRUE(Find(Collect(*collector), kGpu0)->health.healthy);
  fake_.fail(slot, "clock_events", NVML_ERROR_GPU_IS_LOST);
  const auto reports = Collect(*collector);
  ASSERT_NE(Find(reports, kGpu0), nullptr);
  EXPECT_EQ(Find(reports, kGpu0)->health.reason, "gpu lost");
}

TEST_F(NvmlCountersTest, AnOlderDriverLacksTheNewerCallsAndFallsBackToTheOlderNames) {
  OpenFake(FAKE_NVML_OLD_LIBRARY);
  const int slot = AddGpu(kGpu0, "00000000:3B:00.0");
  fake_.set_driver_version("470.256.02", 11040);
  fake_.add_process(slot, 0, 4242, 512ULL << 20);
  fake_.set(slot, "process_utilization", 1);
  fake_.add_process_sample(slot, 4242, 1000, 50, 20, 0, 0);
  const DeviceReport r = CollectOne(kGpu0);
  // nvmlDeviceGetCurrentClocksThrottleReasons and nvmlSystemGetCudaDriverVersion, by their names
  // before R535.
  EXPECT_EQ(Value(r, "devscope_device_clock_event_reason_active", {{"reason", "sw_power_cap"}}), 1);
  EXPECT_EQ(Value(r, "devscope_device_driver_info",
                  {{"driver_version", "470.256.02"}, {"cuda_driver_version", "11.4"}}),
            1);
  // No nvmlDeviceGetMemoryInfo_v2: used includes the reserve, which has no series.
  EXPECT_EQ(Value(r, "devscope_device_memory_used_bytes"), (1024 + 329) * kMiB);
  EXPECT_FALSE(Has(r, "devscope_device_memory_reserved_bytes"));
  EXPECT_EQ(Value(r, "devscope_device_memory_free_bytes"), (81559 - 329 - 1024) * kMiB);
  // No nvmlDeviceGetFieldValues, nvmlDeviceGetRemappedRows or nvmlDeviceGetProcessUtilization.
  EXPECT_FALSE(Has(r, "devscope_device_memory_temperature_celsius"));
  EXPECT_FALSE(Has(r, "devscope_device_nvlink_transmit_bytes_total"));
  EXPECT_FALSE(Has(r, "devscope_device_remapped_rows"));
  ASSERT_EQ(r.processes.size(), 1u);
  EXPECT_EQ(r.processes[0].memory_used_bytes, 512ULL << 20);
  EXPECT_FALSE(r.processes[0].sm_utilization_ratio.has_value());
  // The rest is there.
  EXPECT_TRUE(Has(r, "devscope_device_nvlink_errors_total"));
  EXPECT_TRUE(Has(r, "devscope_device_retired_pages"));
  EXPECT_TRUE(Has(r, "devscope_device_clock_hertz"));
}

TEST_F(NvmlCountersTest, DriverVersionsOnEveryDeviceOfTheDriver) {
  const int gpu = fake_.add_gpu(kGpu0, "NVIDIA A100", "00000000:3B:00.0");
  fake_.add_mig(gpu, kMig1, "MIG 1g.5gb", 1);
  fake_.set_driver_version("535.104.05", 0);  // CUDA's version NOT_SUPPORTED: empty label
  auto collector = Make();
  ASSERT_NE(collector, nullptr);
  const auto reports = Collect(*collector);
  for (const char* id : {kGpu0, kMig1}) {
    EXPECT_EQ(Value(*Find(reports, id), "devscope_device_driver_info",
                    {{"driver_version", "535.104.05"}, {"cuda_driver_version", ""}}),
              1)
        << id;
  }
}

TEST_F(NvmlCountersTest, XidsAreCountedPerCodeAndTheLatestCarriesItsTime) {
  AddGpu(kGpu0, "00000000:3B:00.0");
  AddGpu(kGpu1, "00000000:86:00.0");
  options_.ignored_xids = {13};
  FakeClock clock;  // the XID thread stamps events with it
  auto made = NewNvmlCollector(options_, roots_, clock);
  ASSERT_TRUE(made.ok()) << made.status();
  Collector& collector = **made;
  // Before any XID: the total is 0, and there is no per-code or latest series yet.
  auto reports = Collect(collector);
  EXPECT_EQ(Value(*Find(reports, kGpu0), "devscope_device_errors_total", {{"kind", "xid"}}), 0);
  EXPECT_FALSE(Has(*Find(reports, kGpu0), "devscope_device_xid_errors_total"));
  EXPECT_FALSE(Has(*Find(reports, kGpu0), "devscope_device_last_xid_timestamp_seconds"));

  fake_.inject_xid(0, 79, NVML_INVALID_INSTANCE_ID);
  fake_.inject_xid(0, 13, NVML_INVALID_INSTANCE_ID);  // ignored for health, still counted
  fake_.inject_xid(0, 79, NVML_INVALID_INSTANCE_ID);
  reports = CollectUntil(collector, [](const std::vector<DeviceReport>& r) {
    return Value(*Find(r, kGpu0), "devscope_device_errors_total", {{"kind", "xid"}}) == 3;
  });
  clock.Advance(absl::Seconds(90));
  const double latest_at = absl::ToDoubleSeconds(clock.Now() - absl::UnixEpoch());
  fake_.inject_xid(0, 48, NVML_INVALID_INSTANCE_ID);
  reports = CollectUntil(collector, [](const std::vector<DeviceReport>& r) {
    return Value(*Find(r, kGpu0), "devscope_device_errors_total", {{"kind", "xid"}}) == 4;
  });
  const DeviceReport& r = *Find(reports, kGpu0);
  EXPECT_EQ(Value(r, "devscope_device_xid_errors_total", {{"xid", "79"}}), 2);
  EXPECT_EQ(Value(r, "devscope_device_xid_errors_total", {{"xid", "13"}}), 1);
  EXPECT_EQ(Value(r, "devscope_device_xid_errors_total", {{"xid", "48"}}), 1);
  // One latest-XID series: the last code, at the time it came.
  int latest = 0;
  for (const Sample& sample : r.samples) {
    if (sample.name != "devscope_device_last_xid_timestamp_seconds") continue;
    ++latest;
    EXPECT_EQ(sample.labels, (LabelPairs{{"xid", "48"}}));
    EXPECT_EQ(sample.value, latest_at);
  }
  EXPECT_EQ(latest, 1);
  EXPECT_EQ(r.health.reason, "xid 48");
  // The other GPU saw none.
  EXPECT_FALSE(Has(*Find(reports, kGpu1), "devscope_device_xid_errors_total"));
}

}  // namespace
}  // namespace devscope
