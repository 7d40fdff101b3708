#include "collectors/nvml_telemetry.h"

#include <optional>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"

namespace devscope {

const ClockEventReason kClockEventReasons[9] = {
    {nvmlClocksEventReasonGpuIdle, "gpu_idle"},
    {nvmlClocksEventReasonApplicationsClocksSetting, "applications_clocks_setting"},
    {nvmlClocksEventReasonSwPowerCap, "sw_power_cap"},
    {nvmlClocksEventReasonHwSlowdown, "hw_slowdown"},
    {nvmlClocksEventReasonSyncBoost, "sync_boost"},
    {nvmlClocksEventReasonSwThermalSlowdown, "sw_thermal_slowdown"},
    {nvmlClocksEventReasonHwThermalSlowdown, "hw_thermal_slowdown"},
    {nvmlClocksEventReasonHwPowerBrakeSlowdown, "hw_power_brake_slowdown"},
    {nvmlClocksEventReasonDisplayClockSetting, "display_clock_setting"},
};

namespace {

constexpr double kMegahertz = 1e6;
constexpr double kKibibyte = 1024;

// One device's reads: the calls, where they log, and the samples they make.
class TelemetryReader {
 public:
  TelemetryReader(NvmlCaller& nvml, nvmlDevice_t device, const std::string& id, bool& lost)
      : nvml_(nvml), api_(nvml.api()), device_(device), id_(id), lost_(lost) {}

  std::vector<Sample> Read() {
    ReadUtilization();
    ReadMemory();
    ReadClocks();
    ReadClockEventReasons();
    ReadPower();
    ReadTemperature();
    ReadEcc();
    ReadRetiredPages();
    ReadRemappedRows();
    ReadPcie();
    ReadFieldValues(ReadNvLinks());
    return std::move(samples_);
  }

 private:
  bool Check(nvmlReturn_t ret, const char* what) { return nvml_.Check(ret, id_, what, lost_); }

  void Add(const char* name, double value, LabelPairs labels = {},
           Sample::Kind kind = Sample::Kind::kGauge) {
    Sample sample;
    sample.name = name;
    sample.kind = kind;
    sample.value = value;
    sample.labels = std::move(labels);
    samples_.push_back(std::move(sample));
  }
  void AddCounter(const char* name, double value, LabelPairs labels = {}) {
    Add(name, value, std::move(labels), Sample::Kind::kCounter);
  }

  void ReadUtilization() {
    if (api_.GetUtilizationRates != nullptr) {
      // nvmlDeviceGetUtilizationRates: percent of the last sample period with a kernel running
      // (gpu) and with device memory being read or written (memory: the copy engines' share).
      nvmlUtilization_t utilization = {};
      if (Check(api_.GetUtilizationRates(device_, &utilization), "nvmlDeviceGetUtilizationRates")) {
        Add("devscope_device_utilization_ratio", utilization.gpu / 100.0);
        Add("devscope_device_memory_copy_utilization_ratio", utilization.memory / 100.0);
      }
    }
    // nvmlDeviceGetEncoderUtilization, nvmlDeviceGetDecoderUtilization: percent busy of NVENC
    // and NVDEC over their own sampling period.
    for (auto [fn, what, name] :
         {std::tuple{api_.GetEncoderUtilization, "nvmlDeviceGetEncoderUtilization",
                     "devscope_device_encoder_utilization_ratio"},
          std::tuple{api_.GetDecoderUtilization, "nvmlDeviceGetDecoderUtilization",
                     "devscope_device_decoder_utilization_ratio"}}) {
      unsigned int percent = 0, period_us = 0;
      if (fn != nullptr && Check(fn(device_, &percent, &period_us), what)) {
        Add(name, percent / 100.0);
      }
    }
  }

  void ReadMemory() {
    // nvmlDeviceGetMemoryInfo_v2: framebuffer total, reserved (the driver's and firmware's),
    // used by allocations and free, as nvidia-smi shows them. Drivers before R510 have only
    // nvmlDeviceGetMemoryInfo, whose `used` includes the reserve and which gives no reserve.
    if (api_.GetMemoryInfoV2 != nullptr) {
      nvmlMemory_v2_t memory = {};
      memory.version = nvmlMemory_v2;
      const nvmlReturn_t ret = api_.GetMemoryInfoV2(device_, &memory);
      if (ret == NVML_SUCCESS) {
        Add("devscope_device_memory_used_bytes", static_cast<double>(memory.used));
        Add("devscope_device_memory_total_bytes", static_cast<double>(memory.total));
        Add("devscope_device_memory_free_bytes", static_cast<double>(memory.free));
        Add("devscope_device_memory_reserved_bytes", static_cast<double>(memory.reserved));
        return;
      }
      if (ret == NVML_ERROR_GPU_IS_LOST) {
        lost_ = true;
        return;
      }
      // Any other answer (a MIG device, a version the driver refuses): the first version.
    }
    if (api_.GetMemoryInfo == nullptr) return;
    nvmlMemory_t memory = {};
    if (Check(api_.GetMemoryInfo(device_, &memory), "nvmlDeviceGetMemoryInfo")) {
      Add("devscope_device_memory_used_bytes", static_cast<double>(memory.used));
      Add("devscope_device_memory_total_bytes", static_cast<double>(memory.total));
      Add("devscope_device_memory_free_bytes", static_cast<double>(memory.free));
    }
  }

  void ReadClocks() {
    // nvmlDeviceGetClockInfo (now) and nvmlDeviceGetMaxClockInfo (the most the clock can reach),
    // MHz, of the SM and memory clock domains.
    for (auto [type, clock] :
         {std::pair{NVML_CLOCK_SM, "sm"}, std::pair{NVML_CLOCK_MEM, "memory"}}) {
      unsigned int mhz = 0;
      if (api_.GetClockInfo != nullptr &&
          Check(api_.GetClockInfo(device_, type, &mhz), "nvmlDeviceGetClockInfo")) {
        Add("devscope_device_clock_hertz", mhz * kMegahertz, {{"clock", clock}});
      }
      if (api_.GetMaxClockInfo != nullptr &&
          Check(api_.GetMaxClockInfo(device_, type, &mhz), "nvmlDeviceGetMaxClockInfo")) {
        Add("devscope_device_clock_max_hertz", mhz * kMegahertz, {{"clock", clock}});
      }
    }
  }

  void ReadClockEventReasons() {
    // nvmlDeviceGetCurrentClocksEventReasons (nvmlDeviceGetCurrentClocksThrottleReasons before
    // R535): a bit per reason the clocks are held down now. A reason the device does not support
    // (nvmlDeviceGetSupportedClocksEventReasons) has no series rather than a 0 that means
    // nothing; when the supported set is unknown, every reason has one.
    if (api_.GetCurrentClocksEventReasons == nullptr) return;
    unsigned long long current = 0;
    if (!Check(api_.GetCurrentClocksEventReasons(device_, &current),
               "nvmlDeviceGetCurrentClocksEventReasons")) {
      return;
    }
    unsigned long long supported = ~0ULL;
    if (api_.GetSupportedClocksEventReasons != nullptr &&
        !Check(api_.GetSupportedClocksEventReasons(device_, &supported),
               "nvmlDeviceGetSupportedClocksEventReasons")) {
      supported = ~0ULL;
    }
    for (const ClockEventReason& reason : kClockEventReasons) {
      if ((supported & reason.bit) == 0) continue;
      Add("devscope_device_clock_event_reason_active", (current & reason.bit) != 0 ? 1 : 0,
          {{"reason", reason.name}});
    }
  }

  void ReadPower() {
    unsigned int milliwatts = 0;
    // nvmlDeviceGetPowerUsage: the board's draw now.
    if (api_.GetPowerUsage != nullptr &&
        Check(api_.GetPowerUsage(device_, &milliwatts), "nvmlDeviceGetPowerUsage")) {
      Add("devscope_device_power_watts", milliwatts / 1e3);
    }
    // nvmlDeviceGetEnforcedPowerLimit: the limit in force now (the lowest of the configured
    // limit and any other constraint), nvidia-smi's "Current Power Limit".
    if (api_.GetEnforcedPowerLimit != nullptr &&
        Check(api_.GetEnforcedPowerLimit(device_, &milliwatts),
              "nvmlDeviceGetEnforcedPowerLimit")) {
      Add("devscope_device_power_limit_watts", milliwatts / 1e3);
    }
    // nvmlDeviceGetTotalEnergyConsumption: since the driver was loaded.
    unsigned long long millijoules = 0;
    if (api_.GetTotalEnergyConsumption != nullptr &&
        Check(api_.GetTotalEnergyConsumption(device_, &millijoules),
              "nvmlDeviceGetTotalEnergyConsumption")) {
      AddCounter("devscope_device_energy_joules_total", static_cast<double>(millijoules) / 1e3);
    }
  }

  void ReadTemperature() {
    // nvmlDeviceGetTemperature: the GPU die. The memory's comes with the field values.
    unsigned int celsius = 0;
    if (api_.GetTemperature != nullptr &&
        Check(api_.GetTemperature(device_, NVML_TEMPERATURE_GPU, &celsius),
              "nvmlDeviceGetTemperature")) {
      Add("devscope_device_temperature_celsius", celsius);
    }
  }

  void ReadEcc() {
    if (api_.GetTotalEccErrors == nullptr) return;
    // nvmlDeviceGetTotalEccErrors, aggregate counts: over the board's lifetime, so they never go
    // down (a counter).
    for (auto [type, kind] : {std::pair{NVML_MEMORY_ERROR_TYPE_CORRECTED, "ecc_corrected"},
                              std::pair{NVML_MEMORY_ERROR_TYPE_UNCORRECTED, "ecc_uncorrected"}}) {
      unsigned long long count = 0;
      if (Check(api_.GetTotalEccErrors(device_, type, NVML_AGGREGATE_ECC, &count),
                "nvmlDeviceGetTotalEccErrors")) {
        AddCounter("devscope_device_errors_total", static_cast<double>(count), {{"kind", kind}});
      }
    }
  }

  void ReadRetiredPages() {
    // nvmlDeviceGetRetiredPages with no buffer: the number of pages retired for each cause
    // (GPUs before Ampere; later ones remap rows instead and answer NOT_SUPPORTED). With pages
    // to list and no room, NVML answers INSUFFICIENT_SIZE and still gives their number.
    if (api_.GetRetiredPages != nullptr) {
      for (auto [cause, label] :
           {std::pair{NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS, "single_bit_ecc"},
            std::pair{NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR, "double_bit_ecc"}}) {
        unsigned int pages = 0;
        nvmlReturn_t ret = api_.GetRetiredPages(device_, cause, &pages, nullptr);
        if (ret == NVML_ERROR_INSUFFICIENT_SIZE) ret = NVML_SUCCESS;
        if (Check(ret, "nvmlDeviceGetRetiredPages")) {
          Add("devscope_device_retired_pages", pages, {{"cause", label}});
        }
      }
    }
    // nvmlDeviceGetRetiredPagesPendingStatus: pages that retire at the next driver reload.
    nvmlEnableState_t pending = NVML_FEATURE_DISABLED;
    if (api_.GetRetiredPagesPendingStatus != nullptr &&
        Check(api_.GetRetiredPagesPendingStatus(device_, &pending),
              "nvmlDeviceGetRetiredPagesPendingStatus")) {
      Add("devscope_device_retired_pages_pending", pending == NVML_FEATURE_ENABLED ? 1 : 0);
    }
  }

  void ReadRemappedRows() {
    // nvmlDeviceGetRemappedRows (Ampere and later): rows remapped for correctable and
    // uncorrectable errors, a remap waiting for a GPU reset, and a remap that failed (the GPU
    // needs servicing).
    if (api_.GetRemappedRows == nullptr) return;
    unsigned int correctable = 0, uncorrectable = 0, pending = 0, failed = 0;
    if (!Check(api_.GetRemappedRows(device_, &correctable, &uncorrectable, &pending, &failed),
               "nvmlDeviceGetRemappedRows")) {
      return;
    }
    Add("devscope_device_remapped_rows", correctable, {{"cause", "correctable"}});
    Add("devscope_device_remapped_rows", uncorrectable, {{"cause", "uncorrectable"}});
    Add("devscope_device_row_remap_pending", pending != 0 ? 1 : 0);
    Add("devscope_device_row_remap_failed", failed != 0 ? 1 : 0);
  }

  void ReadPcie() {
    // nvmlDeviceGetPcieReplayCounter: link-level replays (retransmissions after a bad TLP).
    unsigned int replays = 0;
    if (api_.GetPcieReplayCounter != nullptr &&
        Check(api_.GetPcieReplayCounter(device_, &replays), "nvmlDeviceGetPcieReplayCounter")) {
      AddCounter("devscope_device_pcie_replays_total", replays);
    }
    // nvmlDeviceGetPcieThroughput: KB/s over NVML's last 20 ms sample, each way.
    if (api_.GetPcieThroughput == nullptr) return;
    for (auto [counter, name] :
         {std::pair{NVML_PCIE_UTIL_TX_BYTES, "devscope_device_pcie_transmit_bytes_per_second"},
          std::pair{NVML_PCIE_UTIL_RX_BYTES, "devscope_device_pcie_receive_bytes_per_second"}}) {
      unsigned int kilobytes = 0;
      if (Check(api_.GetPcieThroughput(device_, counter, &kilobytes),
                "nvmlDeviceGetPcieThroughput")) {
        Add(name, kilobytes * kKibibyte);
      }
    }
  }

  // The device's active NVLink links, with their error counters sampled.
  std::vector<unsigned int> ReadNvLinks() {
    std::vector<unsigned int> links;
    if (api_.GetNvLinkState == nullptr) return links;
    for (unsigned int link = 0; link < NVML_NVLINK_MAX_LINKS; ++link) {
      // nvmlDeviceGetNvLinkState: INVALID_ARGUMENT past the device's last link.
      nvmlEnableState_t active = NVML_FEATURE_DISABLED;
      const nvmlReturn_t ret = api_.GetNvLinkState(device_, link, &active);
      if (ret == NVML_ERROR_INVALID_ARGUMENT) break;
      if (!Check(ret, "nvmlDeviceGetNvLinkState") || active != NVML_FEATURE_ENABLED) continue;
      links.push_back(link);
      ReadNvLinkErrors(link);
    }
    return links;
  }

  void ReadNvLinkErrors(unsigned int link) {
    // nvmlDeviceGetNvLinkErrorCounter: the data link layer's error counters of one link.
    static constexpr std::pair<nvmlNvLinkErrorCounter_t, const char*> kCounters[] = {
        {NVML_NVLINK_ERROR_DL_REPLAY, "replay"},     {NVML_NVLINK_ERROR_DL_RECOVERY, "recovery"},
        {NVML_NVLINK_ERROR_DL_CRC_FLIT, "crc_flit"}, {NVML_NVLINK_ERROR_DL_CRC_DATA, "crc_data"},
        {NVML_NVLINK_ERROR_DL_ECC_DATA, "ecc_data"},
    };
    if (api_.GetNvLinkErrorCounter == nullptr) return;
    for (auto [counter, kind] : kCounters) {
      unsigned long long count = 0;
      if (Check(api_.GetNvLinkErrorCounter(device_, link, counter, &count),
                "nvmlDeviceGetNvLinkErrorCounter")) {
        AddCounter("devscope_device_nvlink_errors_total", static_cast<double>(count),
                   {{"link", absl::StrCat(link)}, {"kind", kind}});
      }
    }
  }

  // What NVML gives only as field values, in one nvmlDeviceGetFieldValues call: the memory
  // temperature (NVML_FI_DEV_MEMORY_TEMP) and the data each active NVLink link sent and received
  // (NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX/RX with the link as scope: KiB counters).
  void ReadFieldValues(const std::vector<unsigned int>& links) {
    if (api_.GetFieldValues == nullptr) return;
    std::vector<nvmlFieldValue_t> values(1 + 2 * links.size(), nvmlFieldValue_t{});
    values[0].fieldId = NVML_FI_DEV_MEMORY_TEMP;
    for (size_t i = 0; i < links.size(); ++i) {
      values[1 + 2 * i].fieldId = NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX;
      values[2 + 2 * i].fieldId = NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX;
      values[1 + 2 * i].scopeId = values[2 + 2 * i].scopeId = links[i];
    }
    if (!Check(api_.GetFieldValues(device_, static_cast<int>(values.size()), values.data()),
               "nvmlDeviceGetFieldValues")) {
      return;
    }
    if (std::optional<double> celsius = FieldValue(values[0])) {
      Add("devscope_device_memory_temperature_celsius", *celsius);
    }
    for (size_t i = 0; i < links.size(); ++i) {
      const std::string link = absl::StrCat(links[i]);
      if (std::optional<double> kib = FieldValue(values[1 + 2 * i])) {
        AddCounter("devscope_device_nvlink_transmit_bytes_total", *kib * kKibibyte,
                   {{"link", link}});
      }
      if (std::optional<double> kib = FieldValue(values[2 + 2 * i])) {
        AddCounter("devscope_device_nvlink_receive_bytes_total", *kib * kKibibyte,
                   {{"link", link}});
      }
    }
  }

  // One field's value, when NVML gave it (each field has its own result).
  std::optional<double> FieldValue(const nvmlFieldValue_t& field) {
    const std::string what = absl::StrCat("nvmlDeviceGetFieldValues(", field.fieldId, ")");
    if (!Check(field.nvmlReturn, what.c_str())) return std::nullopt;
    switch (field.valueType) {
      case NVML_VALUE_TYPE_DOUBLE:
        return field.value.dVal;
      case NVML_VALUE_TYPE_UNSIGNED_INT:
        return field.value.uiVal;
      case NVML_VALUE_TYPE_UNSIGNED_LONG:
        return static_cast<double>(field.value.ulVal);
      case NVML_VALUE_TYPE_UNSIGNED_LONG_LONG:
        return static_cast<double>(field.value.ullVal);
      case NVML_VALUE_TYPE_SIGNED_LONG_LONG:
        return static_cast<double>(field.value.sllVal);
      case NVML_VALUE_TYPE_SIGNED_INT:
        return field.value.siVal;
    }
    return std::nullopt;  // a type newer than devscope
  }

  NvmlCaller& nvml_;
  const NvmlApi& api_;
  const nvmlDevice_t device_;
  const std::string& id_;
  bool& lost_;
  std::vector<Sample> samples_;
};

}  // namespace

std::vector<Sample> ReadTelemetry(NvmlCaller& nvml, nvmlDevice_t device, const std::string& id,
                                  bool& lost) {
  return TelemetryReader(nvml, device, id, lost).Read();
}

NvmlDriverVersions ReadDriverVersions(const NvmlApi& api) {
  NvmlDriverVersions versions;
  char buffer[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE] = {};
  if (api.GetDriverVersion != nullptr &&
      api.GetDriverVersion(buffer, sizeof(buffer)) == NVML_SUCCESS) {
    buffer[sizeof(buffer) - 1] = '\0';
    versions.driver = buffer;
  }
  int cuda = 0;
  if (api.GetCudaDriverVersion != nullptr && api.GetCudaDriverVersion(&cuda) == NVML_SUCCESS &&
      cuda > 0) {
    versions.cuda_driver = absl::StrCat(cuda / 1000, ".", cuda % 1000 / 10);
  }
  return versions;
}

std::optional<Sample> DriverInfoSample(const NvmlDriverVersions& versions) {
  if (versions.driver.empty() && versions.cuda_driver.empty()) return std::nullopt;
  Sample sample;
  sample.name = "devscope_device_driver_info";
  sample.labels = {{"driver_version", versions.driver},
                   {"cuda_driver_version", versions.cuda_driver}};
  sample.value = 1;
  return sample;
}

}  // namespace devscope
