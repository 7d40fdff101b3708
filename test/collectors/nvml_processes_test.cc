// The processes using each device (DeviceReport::processes), from the fake libnvidia-ml's running
// compute and graphics process lists and per-process utilisation samples.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/collectors/nvml_fixture.h"

namespace devscope {
namespace {

constexpr char kGpu0[] = "GPU-11111111-2222-3333-4444-555555555555";
constexpr char kGpu1[] = "GPU-66666666-7777-8888-9999-000000000000";
constexpr char kMig1[] = "MIG-aaaaaaaa-0000-0000-0000-000000000001";

constexpr unsigned long long kNotAvailable = NVML_VALUE_NOT_AVAILABLE_ULL;

using NvmlProcessesTest = NvmlFixture;

std::vector<uint32_t> Pids(const DeviceReport& report) {
  std::vector<uint32_t> pids;
  for (const DeviceProcess& p : report.processes) pids.push_back(p.pid);
  return pids;
}

const DeviceProcess* FindPid(const DeviceReport& report, uint32_t pid) {
  for (const DeviceProcess& p : report.processes) {
    if (p.pid == pid) return &p;
  }
  return nullptr;
}

TEST_F(NvmlProcessesTest, RunningProcessesWithTheirMemoryAndUtilisation) {
  const int gpu = fake_.add_gpu(kGpu0, "NVIDIA A100", "00000000:3B:00.0");
  fake_.add_gpu(kGpu1, "NVIDIA A100", "00000000:86:00.0");
  fake_.add_process(gpu, 0, 300, 2ULL << 30);     // compute
  fake_.add_process(gpu, 0, 100, 1ULL << 30);     // compute
  fake_.add_process(gpu, 1, 200, kNotAvailable);  // graphics, memory not available
  fake_.add_process(gpu, 1, 300, 2ULL << 30);     // also graphics: counted once
  fake_.set(gpu, "process_utilization", 1);
  // Two samples of 100 (their mean counts) and one of 400, a process no list names (it ran
  // between the passes).
  fake_.add_process_sample(gpu, 100, 1000, 40, 10, 0, 0);
  fake_.add_process_sample(gpu, 100, 2000, 60, 30, 0, 0);
  fake_.add_process_sample(gpu, 400, 1500, 5, 1, 20, 30);
  auto collector = Make();
  ASSERT_NE(collector, nullptr);
  auto reports = Collect(*collector);
  const DeviceReport& r = *Find(reports, kGpu0);
  ASSERT_THAT(Pids(r), ::testing::ElementsAre(100, 200, 300, 400));

  const DeviceProcess& p100 = *FindPid(r, 100);
  EXPECT_EQ(p100.memory_used_bytes, 1ULL << 30);
  EXPECT_DOUBLE_EQ(*p100.sm_utilization_ratio, 0.5);
  EXPECT_DOUBLE_EQ(*p100.memory_utilization_ratio, 0.2);
  EXPECT_EQ(p100.encoder_utilization_ratio, 0);
  EXPECT_EQ(p100.decoder_utilization_ratio, 0);

  const DeviceProcess& p200 = *FindPid(r, 200);  // what NVML did not give is absent
  EXPECT_FALSE(p200.memory_used_bytes.has_value());
  EXPECT_FALSE(p200.sm_utilization_ratio.has_value());

  EXPECT_EQ(FindPid(r, 300)->memory_used_bytes, 2ULL << 30);
  EXPECT_FALSE(FindPid(r, 300)->sm_utilization_ratio.has_value());

  const DeviceProcess& p400 = *FindPid(r, 400);
  EXPECT_FALSE(p400.memory_used_bytes.has_value());
  EXPECT_DOUBLE_EQ(*p400.encoder_utilization_ratio, 0.2);
  EXPECT_DOUBLE_EQ(*p400.decoder_utilization_ratio, 0.3);

  EXPECT_TRUE(Find(reports, kGpu1)->processes.empty());

  // The next pass asks for samples after the newest it read: with none newer, the processes
  // keep their memory and have no utilisation; a newer sample is all that counts.
  reports = Collect(*collector);
  EXPECT_EQ(fake_.last_seen(gpu), 2000u);
  EXPECT_THAT(Pids(*Find(reports, kGpu0)), ::testing::ElementsAre(100, 200, 300));
  EXPECT_FALSE(FindPid(*Find(reports, kGpu0), 100)->sm_utilization_ratio.has_value());
  fake_.add_process_sample(gpu, 100, 3000, 90, 0, 0, 0);
  reports = Collect(*collector);
  EXPECT_DOUBLE_EQ(*FindPid(*Find(reports, kGpu0), 100)->sm_utilization_ratio, 0.9);
  EXPECT_EQ(fake_.last_seen(gpu), 2000u);
  Collect(*collector);
  EXPECT_EQ(fake_.last_seen(gpu), 3000u);
}

TEST_F(NvmlProcessesTest, MoreProcessesThanTheFirstBufferHolds) {
  const int gpu = fake_.add_gpu(kGpu0, "NVIDIA A100", "00000000:3B:00.0");
  for (unsigned pid = 1000; pid < 1014; ++pid) fake_.add_process(gpu, 0, pid, pid * 1024);
  auto collector = Make();
  ASSERT_NE(collector, nullptr);
  const auto reports = Collect(*collector);
  const DeviceReport& r = *Find(reports, kGpu0);
  ASSERT_EQ(r.processes.size(), 14u);
  EXPECT_EQ(r.processes[13].pid, 1013u);
  EXPECT_EQ(r.processes[13].memory_used_bytes, 1013u * 1024);
}

TEST_F(NvmlProcessesTest, AMigDeviceListsItsOwnProcesses) {
  const int gpu = fake_.add_gpu(kGpu0, "NVIDIA A100", "00000000:3B:00.0");
  const int mig = fake_.add_mig(gpu, kMig1, "MIG 1g.5gb", 1);
  fake_.add_process(mig, 0, 77, 100ULL << 20);
  // Per-process utilisation is not supported on a MIG device: absent, not 0.
  auto collector = Make();
  ASSERT_NE(collector, nullptr);
  const auto reports = Collect(*collector);
  const DeviceReport& m = *Find(reports, kMig1);
  ASSERT_EQ(m.processes.size(), 1u);
  EXPECT_EQ(m.processes[0].pid, 77u);
  EXPECT_EQ(m.processes[0].memory_used_bytes, 100ULL << 20);
  EXPECT_FALSE(m.processes[0].sm_utilization_ratio.has_value());
  EXPECT_TRUE(Find(reports, kGpu0)->processes.empty());
}

TEST_F(NvmlProcessesTest, AFailingListLosesOnlyWhatItWouldHaveGiven) {
  const int gpu = fake_.add_gpu(kGpu0, "NVIDIA A100", "00000000:3B:00.0");
  fake_.set(gpu, "temperature", 50);
  fake_.add_process(gpu, 0, 10, 1 << 20);
  fake_.add_process(gpu, 1, 20, 2 << 20);
  fake_.set(gpu, "process_utilization", 1);
  fake_.add_process_sample(gpu, 20, 1000, 10, 0, 0, 0);
  fake_.fail(gpu, "compute_processes", NVML_ERROR_NO_PERMISSION);
  fake_.fail(gpu, "process_utilization", NVML_ERROR_UNKNOWN);
  auto collector = Make();
  ASSERT_NE(collector, nullptr);
  const auto reports = Collect(*collector);
  const DeviceReport& r = *Find(reports, kGpu0);
  ASSERT_THAT(Pids(r), ::testing::ElementsAre(20));
  EXPECT_EQ(r.processes[0].memory_used_bytes, 2u << 20);
  EXPECT_FALSE(r.processes[0].sm_utilization_ratio.has_value());
  EXPECT_EQ(Value(r, "devscope_device_temperature_celsius"), 50);
  EXPECT_TRUE(r.health.healthy);
}

}  // namespace
}  // namespace devscope
