// Per-process data of the nvml collector: the processes using a device, from NVML's running
// compute and graphics process lists (their used memory) and its per-process utilisation samples.
// devscope renders none of it itself: the join maps each process to its container.
#ifndef DEVSCOPE_COLLECTORS_NVML_PROCESSES_H_
#define DEVSCOPE_COLLECTORS_NVML_PROCESSES_H_

#include <map>
#include <string>
#include <vector>

#include "collectors/collector.h"
#include "collectors/nvml_loader.h"

namespace devscope {

// Used from the collector's thread only.
class NvmlProcessReader {
 public:
  explicit NvmlProcessReader(NvmlCaller& nvml) : nvml_(nvml) {}

  // The processes using `device` (a GPU or a MIG device), in PID order. A process is listed when
  // a running-process list names it or it has utilisation samples newer than this reader's last
  // pass over the device (its first pass takes every sample NVML still holds); its utilisation
  // is the mean of those samples. What NVML did not give is absent; a failed call is logged once
  // and leaves out only what it would have given. `id` names the device.
  std::vector<DeviceProcess> Read(nvmlDevice_t device, const std::string& id, bool& lost);

 private:
  void ReadRunning(nvmlDeviceGetRunningProcesses_v1_fn fn, const char* what, nvmlDevice_t device,
                   const std::string& id, bool& lost, std::map<uint32_t, DeviceProcess>& out);
  void ReadUtilization(nvmlDevice_t device, const std::string& id, bool& lost,
                       std::map<uint32_t, DeviceProcess>& out);

  NvmlCaller& nvml_;
  // Per device ID: the CPU time (microseconds since 1970) of the newest utilisation sample read,
  // NVML's lastSeenTimeStamp for the next pass.
  std::map<std::string, unsigned long long> last_sample_us_;
};

}  // namespace devscope

#endif  // DEVSCOPE_COLLECTORS_NVML_PROCESSES_H_
