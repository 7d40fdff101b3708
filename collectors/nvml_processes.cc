#include "collectors/nvml_processes.h"

#include <algorithm>

namespace devscope {
namespace {

// Entries asked for beyond the last count: processes start between the calls.
constexpr unsigned int kSlack = 8;

}  // namespace

std::vector<DeviceProcess> NvmlProcessReader::Read(nvmlDevice_t device, const std::string& id,
                                                   bool& lost) {
  const NvmlApi& api = nvml_.api();
  std::map<uint32_t, DeviceProcess> by_pid;
  ReadRunning(api.GetComputeRunningProcesses, "nvmlDeviceGetComputeRunningProcesses", device, id,
              lost, by_pid);
  ReadRunning(api.GetGraphicsRunningProcesses, "nvmlDeviceGetGraphicsRunningProcesses", device, id,
              lost, by_pid);
  ReadUtilization(device, id, lost, by_pid);
  std::vector<DeviceProcess> processes;
  processes.reserve(by_pid.size());
  for (auto& [pid, process] : by_pid) processes.push_back(std::move(process));
  return processes;
}

void NvmlProcessReader::ReadRunning(nvmlDeviceGetRunningProcesses_v1_fn fn, const char* what,
                                    nvmlDevice_t device, const std::string& id, bool& lost,
                                    std::map<uint32_t, DeviceProcess>& out) {
  if (fn == nullptr) return;
  // nvmlDeviceGet{Compute,Graphics}RunningProcesses: in `count` the room given, out the number
  // of processes; INSUFFICIENT_SIZE when there was not room for them all.
  std::vector<nvmlProcessInfo_v1_t> infos;
  unsigned int count = kSlack;
  for (int attempt = 0; attempt < 3; ++attempt) {
    // Twice the room NVML is told of: a driver that wrote a later version's larger entries here
    // would give wrong values, but not write past the buffer.
    infos.assign(2 * count, nvmlProcessInfo_v1_t{});
    unsigned int n = count;
    const nvmlReturn_t ret = fn(device, &n, infos.data());
    if (ret == NVML_ERROR_INSUFFICIENT_SIZE) {
      count = n + kSlack;
      continue;
    }
    if (!nvml_.Check(ret, id, what, lost)) return;
    for (unsigned int i = 0; i < std::min(n, count); ++i) {
      DeviceProcess& process = out[infos[i].pid];
      process.pid = infos[i].pid;
      const unsigned long long used = infos[i].usedGpuMemory;
      // A process in both lists: its memory once, not twice.
      if (used != NVML_VALUE_NOT_AVAILABLE_ULL) {
        process.memory_used_bytes = std::max<uint64_t>(process.memory_used_bytes.value_or(0), used);
      }
    }
    return;
  }
}

void NvmlProcessReader::ReadUtilization(nvmlDevice_t device, const std::string& id, bool& lost,
                                        std::map<uint32_t, DeviceProcess>& out) {
  const nvmlDeviceGetProcessUtilization_fn fn = nvml_.api().GetProcessUtilization;
  if (fn == nullptr) return;
  constexpr char kWhat[] = "nvmlDeviceGetProcessUtilization";
  unsigned long long& last = last_sample_us_[id];
  // nvmlDeviceGetProcessUtilization: the samples newer than `last`; with no buffer, how many
  // there are. NOT_FOUND: none (no process ran since).
  unsigned int count = 0;
  nvmlReturn_t ret = fn(device, nullptr, &count, last);
  if (ret == NVML_ERROR_NOT_FOUND) return;
  if (ret != NVML_ERROR_INSUFFICIENT_SIZE && !nvml_.Check(ret, id, kWhat, lost)) return;
  std::vector<nvmlProcessUtilizationSample_t> samples(count + kSlack);
  count = static_cast<unsigned int>(samples.size());
  ret = fn(device, samples.data(), &count, last);
  if (ret == NVML_ERROR_NOT_FOUND || !nvml_.Check(ret, id, kWhat, lost)) return;
  samples.resize(std::min<size_t>(count, samples.size()));

  struct Sums {
    double sm = 0, memory = 0, encoder = 0, decoder = 0;
    int n = 0;
  };
  std::map<uint32_t, Sums> sums;
  for (const nvmlProcessUtilizationSample_t& sample : samples) {
    Sums& s = sums[sample.pid];
    s.sm += sample.smUtil;
    s.memory += sample.memUtil;
    s.encoder += sample.encUtil;
    s.decoder += sample.decUtil;
    ++s.n;
    last = std::max(last, sample.timeStamp);
  }
  for (const auto& [pid, s] : sums) {
    DeviceProcess& process = out[pid];
    process.pid = pid;
    // Percent of the device's time, averaged over the samples: 0..1.
    process.sm_utilization_ratio = s.sm / s.n / 100;
    process.memory_utilization_ratio = s.memory / s.n / 100;
    process.encoder_utilization_ratio = s.encoder / s.n / 100;
    process.decoder_utilization_ratio = s.decoder / s.n / 100;
  }
}

}  // namespace devscope
