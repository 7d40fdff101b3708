// libnvidia-ml, loaded with dlopen() at run time so that devscope builds and runs where there is
// no NVIDIA driver, and the one way the nvml collector calls it: a failure is an absent value,
// logged once.
#ifndef DEVSCOPE_COLLECTORS_NVML_LOADER_H_
#define DEVSCOPE_COLLECTORS_NVML_LOADER_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "collectors/nvml_api.h"
#include "common/warn_once.h"

namespace devscope {

// The library's entry points. Required ones are checked at load; the others may be missing from
// older drivers and then their attribute is simply absent.
struct NvmlApi {
  void* handle = nullptr;
  nvmlInit_v2_fn Init = nullptr;
  nvmlShutdown_fn Shutdown = nullptr;
  nvmlErrorString_fn ErrorString = nullptr;
  nvmlDeviceGetCount_v2_fn GetCount = nullptr;
  nvmlDeviceGetHandleByIndex_v2_fn GetHandleByIndex = nullptr;
  nvmlDeviceGetUUID_fn GetUUID = nullptr;
  nvmlDeviceGetName_fn GetName = nullptr;
  nvmlDeviceGetSerial_fn GetSerial = nullptr;
  nvmlDeviceGetMinorNumber_fn GetMinorNumber = nullptr;
  nvmlDeviceGetPciInfo_v3_fn GetPciInfo = nullptr;
  nvmlDeviceGetUtilizationRates_fn GetUtilizationRates = nullptr;
  nvmlDeviceGetMemoryInfo_fn GetMemoryInfo = nullptr;
  nvmlDeviceGetTemperature_fn GetTemperature = nullptr;
  nvmlDeviceGetPowerUsage_fn GetPowerUsage = nullptr;
  nvmlDeviceGetTotalEnergyConsumption_fn GetTotalEnergyConsumption = nullptr;
  nvmlDeviceGetTotalEccErrors_fn GetTotalEccErrors = nullptr;
  nvmlDeviceGetMigMode_fn GetMigMode = nullptr;
  nvmlDeviceGetMaxMigDeviceCount_fn GetMaxMigDeviceCount = nullptr;
  nvmlDeviceGetMigDeviceHandleByIndex_fn GetMigDeviceHandleByIndex = nullptr;
  nvmlDeviceGetGpuInstanceId_fn GetGpuInstanceId = nullptr;
  nvmlDeviceGetComputeInstanceId_fn GetComputeInstanceId = nullptr;
  nvmlEventSetCreate_fn EventSetCreate = nullptr;
  nvmlDeviceRegisterEvents_fn RegisterEvents = nullptr;
  nvmlEventSetWait_v2_fn EventSetWait = nullptr;
  nvmlEventSetFree_fn EventSetFree = nullptr;
  // The counters users alert on (collectors/nvml_telemetry.h) and the per-process data
  // (collectors/nvml_processes.h). Where NVML renamed a call, the new name is tried first.
  nvmlSystemGetDriverVersion_fn GetDriverVersion = nullptr;
  nvmlSystemGetCudaDriverVersion_fn GetCudaDriverVersion = nullptr;  // _v2, or the first
  nvmlDeviceGetClockInfo_fn GetClockInfo = nullptr;
  nvmlDeviceGetClockInfo_fn GetMaxClockInfo = nullptr;
  // nvmlDeviceGet{Current,Supported}ClocksEventReasons, or the older ...ClocksThrottleReasons.
  nvmlDeviceGetClocksEventReasons_fn GetCurrentClocksEventReasons = nullptr;
  nvmlDeviceGetClocksEventReasons_fn GetSupportedClocksEventReasons = nullptr;
  nvmlDeviceGetMemoryInfo_v2_fn GetMemoryInfoV2 = nullptr;
  nvmlDeviceGetEngineUtilization_fn GetEncoderUtilization = nullptr;
  nvmlDeviceGetEngineUtilization_fn GetDecoderUtilization = nullptr;
  nvmlDeviceGetFieldValues_fn GetFieldValues = nullptr;
  nvmlDeviceGetPcieReplayCounter_fn GetPcieReplayCounter = nullptr;
  nvmlDeviceGetPcieThroughput_fn GetPcieThroughput = nullptr;
  nvmlDeviceGetNvLinkState_fn GetNvLinkState = nullptr;
  nvmlDeviceGetNvLinkErrorCounter_fn GetNvLinkErrorCounter = nullptr;
  nvmlDeviceGetRetiredPages_fn GetRetiredPages = nullptr;
  nvmlDeviceGetRetiredPagesPendingStatus_fn GetRetiredPagesPendingStatus = nullptr;
  nvmlDeviceGetRemappedRows_fn GetRemappedRows = nullptr;
  nvmlDeviceGetEnforcedPowerLimit_fn GetEnforcedPowerLimit = nullptr;
  nvmlDeviceGetRunningProcesses_v1_fn GetComputeRunningProcesses = nullptr;   // the first version
  nvmlDeviceGetRunningProcesses_v1_fn GetGraphicsRunningProcesses = nullptr;  // the first version
  nvmlDeviceGetProcessUtilization_fn GetProcessUtilization = nullptr;

  // NVML's text for `ret` and its number, e.g. "GPU is lost (15)".
  std::string Error(nvmlReturn_t ret) const;
};

// Loads `library` and resolves the entry points. NotFound when the library or a required symbol
// is missing (no NVIDIA driver on this node). The caller dlclose()s api.handle when done.
absl::StatusOr<NvmlApi> LoadNvml(const std::string& library);

// One collector's calls into NVML: a failed call is an absent value, logged once per device, call
// and error; NOT_SUPPORTED (the GPU lacks it) is not logged; GPU_IS_LOST marks the device lost.
// Used from the collector's thread only.
class NvmlCaller {
 public:
  NvmlCaller(const NvmlApi& api, WarnOnce& warn) : api_(api), warn_(warn) {}

  // True on success; otherwise logs as above and sets `lost` on GPU_IS_LOST.
  bool Check(nvmlReturn_t ret, const std::string& id, const char* what, bool& lost);
  // A string getter's value (nvmlDeviceGetUUID, ...); nullopt when `fn` is missing or fails.
  std::optional<std::string> GetString(nvmlReturn_t (*fn)(nvmlDevice_t, char*, unsigned int),
                                       nvmlDevice_t device, const std::string& id, const char* what,
                                       bool& lost);

  const NvmlApi& api() const { return api_; }

 private:
  const NvmlApi& api_;
  WarnOnce& warn_;
};

}  // namespace devscope

#endif  // DEVSCOPE_COLLECTORS_NVML_LOADER_H_
