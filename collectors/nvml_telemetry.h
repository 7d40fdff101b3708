// The nvml collector's telemetry: one device's samples (a GPU's or a MIG device's), in base units,
// each read from the NVML call its comment names.
//
// What NVML does not give for a device is absent, never zero: a call the library lacks (an older
// driver), a NOT_SUPPORTED answer (a GPU or a MIG device without that counter), or any other
// failure of that one call (logged once per device, call and error) leaves out only the samples
// of that call. GPU_IS_LOST sets `lost`.
#ifndef DEVSCOPE_COLLECTORS_NVML_TELEMETRY_H_
#define DEVSCOPE_COLLECTORS_NVML_TELEMETRY_H_

#include <optional>
#include <string>
#include <vector>

#include "collectors/collector.h"
#include "collectors/nvml_loader.h"

namespace devscope {

// The clock-event ("throttle") reasons: NVML's bit and devscope's `reason` label.
struct ClockEventReason {
  unsigned long long bit;
  const char* name;
};
extern const ClockEventReason kClockEventReasons[9];

// The samples of `device`; `id` names it in logs.
std::vector<Sample> ReadTelemetry(NvmlCaller& nvml, nvmlDevice_t device, const std::string& id,
                                  bool& lost);

// The driver's versions, read once: they are fixed while the driver is loaded.
struct NvmlDriverVersions {
  std::string driver;       // nvmlSystemGetDriverVersion, e.g. "550.54.15"; empty when unknown
  std::string cuda_driver;  // nvmlSystemGetCudaDriverVersion_v2 as major.minor, e.g. "12.4"
};
NvmlDriverVersions ReadDriverVersions(const NvmlApi& api);

// devscope_device_driver_info{driver_version,cuda_driver_version} 1; nothing when neither is
// known.
std::optional<Sample> DriverInfoSample(const NvmlDriverVersions& versions);

}  // namespace devscope

#endif  // DEVSCOPE_COLLECTORS_NVML_TELEMETRY_H_
