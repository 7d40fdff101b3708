#include "collectors/nvml_loader.h"

#include <dlfcn.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace devscope {
namespace {

template <typename Fn>
void Resolve(void* handle, const char* symbol, Fn& fn) {
  fn = reinterpret_cast<Fn>(dlsym(handle, symbol));
}

// `symbol`, or `older` (the same call under its earlier name) when the library lacks `symbol`.
template <typename Fn>
void Resolve(void* handle, const char* symbol, const char* older, Fn& fn) {
  Resolve(handle, symbol, fn);
  if (fn == nullptr) Resolve(handle, older, fn);
}

// The optional entry points of collectors/nvml_telemetry.h and collectors/nvml_processes.h.
void ResolveCounters(void* h, NvmlApi& api) {
  Resolve(h, "nvmlSystemGetDriverVersion", api.GetDriverVersion);
  Resolve(h, "nvmlSystemGetCudaDriverVersion_v2", "nvmlSystemGetCudaDriverVersion",
          api.GetCudaDriverVersion);
  Resolve(h, "nvmlDeviceGetClockInfo", api.GetClockInfo);
  Resolve(h, "nvmlDeviceGetMaxClockInfo", api.GetMaxClockInfo);
  Resolve(h, "nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons",
          api.GetCurrentClocksEventReasons);
  Resolve(h, "nvmlDeviceGetSupportedClocksEventReasons",
          "nvmlDeviceGetSupportedClocksThrottleReasons", api.GetSupportedClocksEventReasons);
  Resolve(h, "nvmlDeviceGetMemoryInfo_v2", api.GetMemoryInfoV2);
  Resolve(h, "nvmlDeviceGetEncoderUtilization", api.GetEncoderUtilization);
  Resolve(h, "nvmlDeviceGetDecoderUtilization", api.GetDecoderUtilization);
  Resolve(h, "nvmlDeviceGetFieldValues", api.GetFieldValues);
  Resolve(h, "nvmlDeviceGetPcieReplayCounter", api.GetPcieReplayCounter);
  Resolve(h, "nvmlDeviceGetPcieThroughput", api.GetPcieThroughput);
  Resolve(h, "nvmlDeviceGetNvLinkState", api.GetNvLinkState);
  Resolve(h, "nvmlDeviceGetNvLinkErrorCounter", api.GetNvLinkErrorCounter);
  Resolve(h, "nvmlDeviceGetRetiredPages", api.GetRetiredPages);
  Resolve(h, "nvmlDeviceGetRetiredPagesPendingStatus", api.GetRetiredPagesPendingStatus);
  Resolve(h, "nvmlDeviceGetRemappedRows", api.GetRemappedRows);
  Resolve(h, "nvmlDeviceGetEnforcedPowerLimit", api.GetEnforcedPowerLimit);
  Resolve(h, "nvmlDeviceGetComputeRunningProcesses", api.GetComputeRunningProcesses);
  Resolve(h, "nvmlDeviceGetGraphicsRunningProcesses", api.GetGraphicsRunningProcesses);
  Resolve(h, "nvmlDeviceGetProcessUtilization", api.GetProcessUtilization);
}

}  // namespace

std::string NvmlApi::Error(nvmlReturn_t ret) const {
  const char* text = ErrorString != nullptr ? ErrorString(ret) : nullptr;
  return text != nullptr ? absl::StrCat(text, " (", static_cast<int>(ret), ")")
                         : absl::StrCat("NVML error ", static_cast<int>(ret));
}

absl::StatusOr<NvmlApi> LoadNvml(const std::string& library) {
  NvmlApi api;
  api.handle = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (api.handle == nullptr) {
    const char* error = dlerror();
    return absl::NotFoundError(
        absl::StrCat("cannot load ", library, ": ", error != nullptr ? error : "unknown error"));
  }
  void* h = api.handle;
  Resolve(h, "nvmlInit_v2", api.Init);
  Resolve(h, "nvmlShutdown", api.Shutdown);
  Resolve(h, "nvmlErrorString", api.ErrorString);
  Resolve(h, "nvmlDeviceGetCount_v2", api.GetCount);
  Resolve(h, "nvmlDeviceGetHandleByIndex_v2", api.GetHandleByIndex);
  Resolve(h, "nvmlDeviceGetUUID", api.GetUUID);
  Resolve(h, "nvmlDeviceGetName", api.GetName);
  Resolve(h, "nvmlDeviceGetSerial", api.GetSerial);
  Resolve(h, "nvmlDeviceGetMinorNumber", api.GetMinorNumber);
  Resolve(h, "nvmlDeviceGetPciInfo_v3", api.GetPciInfo);
  Resolve(h, "nvmlDeviceGetUtilizationRates", api.GetUtilizationRates);
  Resolve(h, "nvmlDeviceGetMemoryInfo", api.GetMemoryInfo);
  Resolve(h, "nvmlDeviceGetTemperature", api.GetTemperature);
  Resolve(h, "nvmlDeviceGetPowerUsage", api.GetPowerUsage);
  Resolve(h, "nvmlDeviceGetTotalEnergyConsumption", api.GetTotalEnergyConsumption);
  Resolve(h, "nvmlDeviceGetTotalEccErrors", api.GetTotalEccErrors);
  Resolve(h, "nvmlDeviceGetMigMode", api.GetMigMode);
  Resolve(h, "nvmlDeviceGetMaxMigDeviceCount", api.GetMaxMigDeviceCount);
  Resolve(h, "nvmlDeviceGetMigDeviceHandleByIndex", api.GetMigDeviceHandleByIndex);
  Resolve(h, "nvmlDeviceGetGpuInstanceId", api.GetGpuInstanceId);
  Resolve(h, "nvmlDeviceGetComputeInstanceId", api.GetComputeInstanceId);
  Resolve(h, "nvmlEventSetCreate", api.EventSetCreate);
  Resolve(h, "nvmlDeviceRegisterEvents", api.RegisterEvents);
  Resolve(h, "nvmlEventSetWait_v2", api.EventSetWait);
  Resolve(h, "nvmlEventSetFree", api.EventSetFree);
  ResolveCounters(h, api);
  std::vector<std::string> missing;
  if (api.Init == nullptr) missing.push_back("nvmlInit_v2");
  if (api.Shutdown == nullptr) missing.push_back("nvmlShutdown");
  if (api.GetCount == nullptr) missing.push_back("nvmlDeviceGetCount_v2");
  if (api.GetHandleByIndex == nullptr) missing.push_back("nvmlDeviceGetHandleByIndex_v2");
  if (api.GetUUID == nullptr) missing.push_back("nvmlDeviceGetUUID");
  if (!missing.empty()) {
    dlclose(api.handle);
    return absl::NotFoundError(absl::StrCat(library, " lacks ", absl::StrJoin(missing, ", ")));
  }
  return api;
}

bool NvmlCaller::Check(nvmlReturn_t ret, const std::string& id, const char* what, bool& lost) {
  if (ret == NVML_SUCCESS) return true;
  if (ret == NVML_ERROR_GPU_IS_LOST) lost = true;
  if (ret != NVML_ERROR_NOT_SUPPORTED && ret != NVML_ERROR_GPU_IS_LOST) {
    warn_.Warn(absl::StrCat(id, "/", what, "/", ret),
               absl::StrCat("device=", id, " ", what, ": ", api_.Error(ret)));
  }
  return false;
}

std::optional<std::string> NvmlCaller::GetString(nvmlReturn_t (*fn)(nvmlDevice_t, char*,
                                                                    unsigned int),
                                                 nvmlDevice_t device, const std::string& id,
                                                 const char* what, bool& lost) {
  if (fn == nullptr) return std::nullopt;
  char buffer[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = {};
  if (!Check(fn(device, buffer, sizeof(buffer)), id, what, lost)) return std::nullopt;
  buffer[sizeof(buffer) - 1] = '\0';
  return std::string(buffer);
}

}  // namespace devscope
