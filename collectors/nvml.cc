// The nvml collector: NVIDIA GPUs and their MIG instances through libnvidia-ml, loaded with
// dlopen() at run time so devscope builds and runs where there is no NVIDIA driver.
//
// Health. A GPU that NVML reports lost (NVML_ERROR_GPU_IS_LOST) is unhealthy while it stays lost.
// A critical XID event (nvmlEventTypeXidCriticalError) that is not in config.nvml_ignored_xids
// makes the GPU unhealthy with reason "xid N" (for an XID scoped to a MIG GPU instance, only that
// MIG device); it recovers after config.nvml_xid_recovery without another critical XID (zero:
// never). Why a quiet period: NVML offers no "fault cleared" event, and a GPU that is still broken
// keeps raising XIDs (and a lost one stays lost), while a reset or a transient fault leaves it
// quiet, so the device is not lost to the node until devscope restarts.
//
// Events. A helper thread blocks in nvmlEventSetWait_v2 (with a short timeout, so it stops
// promptly) and bridges each critical XID to an eventfd: watch_fd(), so the runner collects at
// once. No exception or crash crosses the C boundary: NVML is only called, never calls back.
#include <dlfcn.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "collectors/collector.h"
#include "collectors/nvml_api.h"
#include "collectors/registry.h"
#include "common/config.h"
#include "common/files.h"
#include "common/log.h"

namespace devscope {
namespace {

namespace fs = std::filesystem;

// How long one nvmlEventSetWait_v2 blocks: bounds how long stopping the event thread takes.
constexpr unsigned int kEventWaitMs = 200;

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

  std::string Error(nvmlReturn_t ret) const {
    const char* text = ErrorString != nullptr ? ErrorString(ret) : nullptr;
    return text != nullptr ? absl::StrCat(text, " (", static_cast<int>(ret), ")")
                           : absl::StrCat("NVML error ", static_cast<int>(ret));
  }
};

template <typename Fn>
void Resolve(void* handle, const char* symbol, Fn& fn) {
  fn = reinterpret_cast<Fn>(dlsym(handle, symbol));
}

// Loads `library` and resolves the entry points. NotFound when the library or a required symbol
// is missing (no NVIDIA driver on this node).
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

// NVML's "00000000:3B:00.0" as sysfs and the device plugins spell it: "0000:3b:00.0".
std::string NormalizePciBusId(absl::string_view bus_id) {
  const size_t colon = bus_id.find(':');
  uint32_t domain = 0;
  if (colon == absl::string_view::npos || !absl::SimpleHexAtoi(bus_id.substr(0, colon), &domain)) {
    return absl::AsciiStrToLower(bus_id);
  }
  return absl::StrFormat("%04x:%s", domain, absl::AsciiStrToLower(bus_id.substr(colon + 1)));
}

// A critical XID as the event thread saw it.
struct XidState {
  uint64_t xid = 0;
  absl::Time last;  // the latest critical XID of this scope
};

// How logs name an XID's scope.
std::string ScopeName(unsigned int gpu_instance) {
  return gpu_instance == NVML_INVALID_INSTANCE_ID ? std::string("whole-gpu")
                                                  : absl::StrCat(gpu_instance);
}

// The key XIDs are kept under: the GPU's UUID and the MIG GPU instance (NVML_INVALID_INSTANCE_ID
// for the whole GPU).
using XidScope = std::pair<std::string, unsigned int>;

class NvmlCollector : public Collector {
 public:
  NvmlCollector(const Config& config, NvmlApi api)
      : api_(api),
        sysfs_(config.sysfs),
        devfs_(config.devfs),
        mig_minors_file_(config.nvml_mig_minors_file),
        advertise_resource_(config.nvml.advertise_resource),
        ignored_xids_(config.nvml_ignored_xids.begin(), config.nvml_ignored_xids.end()),
        xid_recovery_(config.nvml_xid_recovery) {}

  ~NvmlCollector() override {
    stop_.Notify();
    if (event_thread_.joinable()) event_thread_.join();
    if (event_set_ != nullptr && api_.EventSetFree != nullptr) api_.EventSetFree(event_set_);
    if (initialized_) api_.Shutdown();
    if (event_fd_ >= 0) close(event_fd_);
    dlclose(api_.handle);
  }

  absl::string_view name() const override { return "nvml"; }
  int watch_fd() const override { return event_fd_; }

  bool DrainWatch() override {
    uint64_t count = 0;
    if (event_fd_ >= 0) (void)!read(event_fd_, &count, sizeof(count));
    return true;
  }

  // nvmlInit_v2, then the event set for XIDs. The status is the factory's.
  absl::Status Start() {
    const nvmlReturn_t ret = api_.Init();
    if (ret != NVML_SUCCESS) {
      const std::string message = absl::StrCat("nvmlInit_v2: ", api_.Error(ret));
      if (ret == NVML_ERROR_DRIVER_NOT_LOADED || ret == NVML_ERROR_LIBRARY_NOT_FOUND) {
        return absl::NotFoundError(message);
      }
      return absl::UnavailableError(message);
    }
    initialized_ = true;
    unsigned int count = 0;
    if (nvmlReturn_t r = api_.GetCount(&count); r != NVML_SUCCESS) {
      return absl::UnavailableError(absl::StrCat("nvmlDeviceGetCount_v2: ", api_.Error(r)));
    }
    if (count == 0) return absl::NotFoundError("NVML reports no GPU");
    StartEvents(count);
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<DeviceReport>> Collect() override {
    unsigned int count = 0;
    if (nvmlReturn_t r = api_.GetCount(&count); r != NVML_SUCCESS) {
      return absl::UnavailableError(absl::StrCat("nvmlDeviceGetCount_v2: ", api_.Error(r)));
    }
    const std::map<XidScope, XidState> xids = CurrentXids();
    std::vector<DeviceReport> reports;
    for (unsigned int index = 0; index < count; ++index) {
      nvmlDevice_t device = nullptr;
      if (nvmlReturn_t r = api_.GetHandleByIndex(index, &device); r != NVML_SUCCESS) {
        // A GPU that fell off the bus: keep reporting what we knew of it, unhealthy.
        auto known = known_.find(index);
        if (known != known_.end()) {
          DeviceReport report;
          report.info = known->second;
          report.health = {false, r == NVML_ERROR_GPU_IS_LOST
                                      ? "gpu lost"
                                      : absl::StrCat("nvml: ", api_.Error(r))};
          reports.push_back(std::move(report));
        }
        WarnOnce(
            absl::StrCat("handle/", index, "/", r),
            absl::StrCat("GPU index ", index, ": nvmlDeviceGetHandleByIndex_v2: ", api_.Error(r)));
        continue;
      }
      CollectGpu(index, device, xids, reports);
    }
    return reports;
  }

 private:
  void WarnOnce(const std::string& key, const std::string& message) {
    if (warned_.insert(key).second) Log().warn("collector=nvml {}", message);
  }

  // Absent on NOT_SUPPORTED (the GPU lacks it) or a missing entry point; logged once for other
  // errors. Marks the device lost on GPU_IS_LOST.
  bool Check(nvmlReturn_t ret, const std::string& id, const char* what, bool& lost) {
    if (ret == NVML_SUCCESS) return true;
    if (ret == NVML_ERROR_GPU_IS_LOST) lost = true;
    if (ret != NVML_ERROR_NOT_SUPPORTED && ret != NVML_ERROR_GPU_IS_LOST) {
      WarnOnce(absl::StrCat(id, "/", what, "/", ret),
               absl::StrCat("device=", id, " ", what, ": ", api_.Error(ret)));
    }
    return false;
  }

  std::optional<std::string> GetString(nvmlReturn_t (*fn)(nvmlDevice_t, char*, unsigned int),
                                       nvmlDevice_t device, const std::string& id, const char* what,
                                       bool& lost) {
    if (fn == nullptr) return std::nullopt;
    char buffer[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = {};
    if (!Check(fn(device, buffer, sizeof(buffer)), id, what, lost)) return std::nullopt;
    buffer[sizeof(buffer) - 1] = '\0';
    return std::string(buffer);
  }

  void CollectGpu(unsigned int index, nvmlDevice_t device, const std::map<XidScope, XidState>& xids,
                  std::vector<DeviceReport>& reports) {
    bool lost = false;
    const std::string where = absl::StrCat("index", index);
    std::optional<std::string> uuid =
        GetString(api_.GetUUID, device, where, "nvmlDeviceGetUUID", lost);
    if (!uuid) {
      auto known = known_.find(index);
      if (lost && known != known_.end()) {
        DeviceReport report;
        report.info = known->second;
        report.health = {false, "gpu lost"};
        reports.push_back(std::move(report));
      }
      return;
    }
    DeviceReport report;
    DeviceInfo& info = report.info;
    info.id = *uuid;
    info.vendor = "NVIDIA";
    info.model = GetString(api_.GetName, device, *uuid, "nvmlDeviceGetName", lost).value_or("");
    info.serial =
        GetString(api_.GetSerial, device, *uuid, "nvmlDeviceGetSerial", lost).value_or("");
    if (api_.GetPciInfo != nullptr) {
      nvmlPciInfo_t pci = {};
      if (Check(api_.GetPciInfo(device, &pci), *uuid, "nvmlDeviceGetPciInfo_v3", lost)) {
        pci.busId[sizeof(pci.busId) - 1] = '\0';
        info.pci_address = NormalizePciBusId(pci.busId);
        info.aliases.push_back(info.pci_address);
        // <sysfs>/bus/pci/devices/<addr>/numa_node: -1 when the platform gives no affinity.
        if (auto numa = ReadTrimmed(
                absl::StrCat(sysfs_, "/bus/pci/devices/", info.pci_address, "/numa_node"))) {
          int64_t node = -1;
          if (absl::SimpleAtoi(*numa, &node) && node >= 0) info.numa_node = node;
        }
      }
    }

    // MIG: when enabled, the MIG devices are what pods get, so they are what is advertised.
    std::vector<nvmlDevice_t> migs;
    if (api_.GetMigMode != nullptr && api_.GetMaxMigDeviceCount != nullptr &&
        api_.GetMigDeviceHandleByIndex != nullptr) {
      unsigned int current = 0, pending = 0;
      unsigned int max = 0;
      if (Check(api_.GetMigMode(device, &current, &pending), *uuid, "nvmlDeviceGetMigMode", lost) &&
          current == NVML_DEVICE_MIG_ENABLE &&
          Check(api_.GetMaxMigDeviceCount(device, &max), *uuid, "nvmlDeviceGetMaxMigDeviceCount",
                lost)) {
        for (unsigned int i = 0; i < max; ++i) {
          nvmlDevice_t mig = nullptr;
          // NOT_FOUND: no MIG device in that slot.
          if (api_.GetMigDeviceHandleByIndex(device, i, &mig) == NVML_SUCCESS) migs.push_back(mig);
        }
      }
    }
    info.advertise = !advertise_resource_.empty() && migs.empty();
    info.resource = advertise_resource_.empty() ? "nvidia.com/gpu" : advertise_resource_;

    // /dev/nvidia<minor> and the control nodes every CUDA process opens.
    unsigned int minor = 0;
    const bool minor_known =
        api_.GetMinorNumber != nullptr &&
        Check(api_.GetMinorNumber(device, &minor), *uuid, "nvmlDeviceGetMinorNumber", lost);
    if (minor_known) AddNode(info.allocate, absl::StrCat("nvidia", minor), /*required=*/true);
    for (const char* node : {"nvidiactl", "nvidia-uvm", "nvidia-uvm-tools"}) {
      AddNode(info.allocate, node, /*required=*/false);
    }

    report.samples = Telemetry(device, *uuid, lost);
    if (!lost) RegisterForXids(device, *uuid);
    const bool events = WithEvents(*uuid);
    if (events) AddXidCount(*uuid, report.samples);
    report.health = Health(*uuid, NVML_INVALID_INSTANCE_ID, xids, lost);
    if (!lost) {
      known_[index] = info;
    } else if (auto known = known_.find(index); known != known_.end()) {
      info = known->second;  // what NVML can no longer say about a lost GPU
    }
    const DeviceInfo parent = info;
    const HealthSignal parent_health = report.health;
    reports.push_back(std::move(report));
    static const std::map<std::string, unsigned int> kNoMinors;
    const std::map<std::string, unsigned int>& mig_minors = migs.empty() ? kNoMinors : MigMinors();

    for (nvmlDevice_t mig : migs) {
      bool mig_lost = false;
      std::optional<std::string> mig_uuid =
          GetString(api_.GetUUID, mig, *uuid, "nvmlDeviceGetUUID(MIG)", mig_lost);
      if (!mig_uuid) continue;
      DeviceReport mig_report;
      DeviceInfo& mig_info = mig_report.info;
      mig_info.id = *mig_uuid;
      mig_info.vendor = parent.vendor;
      mig_info.model = GetString(api_.GetName, mig, *mig_uuid, "nvmlDeviceGetName", mig_lost)
                           .value_or(parent.model);
      mig_info.serial = parent.serial;
      mig_info.pci_address = parent.pci_address;
      mig_info.numa_node = parent.numa_node;
      mig_info.resource = parent.resource;
      mig_info.advertise = !advertise_resource_.empty();
      mig_info.allocate = parent.allocate;
      unsigned int gpu_instance = NVML_INVALID_INSTANCE_ID;
      if (api_.GetGpuInstanceId != nullptr) {
        Check(api_.GetGpuInstanceId(mig, &gpu_instance), *mig_uuid, "nvmlDeviceGetGpuInstanceId",
              mig_lost);
      }
      unsigned int compute_instance = NVML_INVALID_INSTANCE_ID;
      if (api_.GetComputeInstanceId != nullptr) {
        Check(api_.GetComputeInstanceId(mig, &compute_instance), *mig_uuid,
              "nvmlDeviceGetComputeInstanceId", mig_lost);
      }
      // A MIG device is usable only with the capability nodes of its GPU instance and compute
      // instance, /dev/nvidia-caps/nvidia-cap<minor>, whose minors the driver lists by path.
      if (minor_known && gpu_instance != NVML_INVALID_INSTANCE_ID &&
          compute_instance != NVML_INVALID_INSTANCE_ID) {
        const std::string gi = absl::StrCat("gpu", minor, "/gi", gpu_instance);
        for (const std::string& cap :
             {absl::StrCat(gi, "/access"), absl::StrCat(gi, "/ci", compute_instance, "/access")}) {
          auto cap_minor = mig_minors.find(cap);
          if (cap_minor == mig_minors.end()) {
            WarnOnce(absl::StrCat("mig-minor/", cap),
                     absl::StrCat("device=", *mig_uuid, " ", mig_minors_file_, " lists no ", cap,
                                  ": its MIG capability node is not handed out"));
            continue;
          }
          const std::string node = absl::StrCat("nvidia-caps/nvidia-cap", cap_minor->second);
          std::error_code ec;
          if (!fs::exists(absl::StrCat(devfs_, "/", node), ec)) {
            // The driver creates these nodes only on request (nvidia-modprobe, or
            // `nvidia-ctk system create-device-nodes`): say so rather than hand out a dead path.
            WarnOnce(absl::StrCat("mig-node/", node),
                     absl::StrCat("device=", *mig_uuid, " ", devfs_, "/", node,
                                  " does not exist: its MIG capability node is not handed out"));
            continue;
          }
          AddNode(mig_info.allocate, node, /*required=*/true);
        }
      }
      mig_report.samples = Telemetry(mig, *mig_uuid, mig_lost);
      Sample mig_sample;
      mig_sample.name = "devscope_device_mig_info";
      mig_sample.help = "A MIG device's parent GPU and GPU instance.";
      mig_sample.labels = {
          {"parent_device", *uuid},
          {"gpu_instance_id",
           gpu_instance == NVML_INVALID_INSTANCE_ID ? std::string() : absl::StrCat(gpu_instance)}};
      mig_sample.value = 1;
      mig_report.samples.push_back(std::move(mig_sample));
      mig_report.health =
          parent_health.healthy ? Health(*uuid, gpu_instance, xids, mig_lost) : parent_health;
      reports.push_back(std::move(mig_report));
    }
  }

  // The driver's table of MIG capability minors: lines "gpu<minor>/gi<id>/access <cap minor>"
  // and "gpu<minor>/gi<id>/ci<id>/access <cap minor>" (plus "config" and "monitor"). It lists
  // every possible instance, whether or not it exists (4322 lines on an H100 with MIG off), so it
  // is fixed while the driver is loaded: read once, on the first pass that sees a MIG device;
  // an unreadable file is tried again on the next.
  const std::map<std::string, unsigned int>& MigMinors() {
    if (!mig_minors_.empty()) return mig_minors_;
    auto text = ReadSmallFile(mig_minors_file_, 1 << 20);
    if (!text.ok()) {
      WarnOnce("mig-minors",
               absl::StrCat("cannot read ", mig_minors_file_, " (", text.status().message(),
                            "): MIG devices get no capability nodes"));
      return mig_minors_;
    }
    for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipWhitespace())) {
      std::vector<absl::string_view> fields =
          absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
      unsigned int minor = 0;
      if (fields.size() == 2 && absl::SimpleAtoi(fields[1], &minor)) {
        mig_minors_[std::string(fields[0])] = minor;
      }
    }
    return mig_minors_;
  }

  void AddNode(AllocateSpec& allocate, const std::string& node, bool required) {
    AllocateSpec::DeviceNode device_node;
    device_node.host_path = absl::StrCat(devfs_, "/", node);
    device_node.container_path = absl::StrCat("/dev/", node);
    device_node.permissions = "rw";
    std::error_code ec;
    if (!required && !fs::exists(device_node.host_path, ec)) return;
    allocate.device_nodes.push_back(std::move(device_node));
  }

  std::vector<Sample> Telemetry(nvmlDevice_t device, const std::string& id, bool& lost) {
    std::vector<Sample> samples;
    auto add = [&](const char* name, double value, Sample::Kind kind = Sample::Kind::kGauge,
                   LabelPairs labels = {}) {
      Sample sample;
      sample.name = name;
      sample.kind = kind;
      sample.value = value;
      sample.labels = std::move(labels);
      samples.push_back(std::move(sample));
    };
    constexpr auto kCounter = Sample::Kind::kCounter;
    if (api_.GetUtilizationRates != nullptr) {
      nvmlUtilization_t utilization = {};
      if (Check(api_.GetUtilizationRates(device, &utilization), id, "nvmlDeviceGetUtilizationRates",
                lost)) {
        add("devscope_device_utilization_ratio", utilization.gpu / 100.0);
      }
    }
    if (api_.GetMemoryInfo != nullptr) {
      nvmlMemory_t memory = {};
      if (Check(api_.GetMemoryInfo(device, &memory), id, "nvmlDeviceGetMemoryInfo", lost)) {
        add("devscope_device_memory_used_bytes", static_cast<double>(memory.used));
        add("devscope_device_memory_total_bytes", static_cast<double>(memory.total));
      }
    }
    if (api_.GetTemperature != nullptr) {
      unsigned int celsius = 0;
      if (Check(api_.GetTemperature(device, NVML_TEMPERATURE_GPU, &celsius), id,
                "nvmlDeviceGetTemperature", lost)) {
        add("devscope_device_temperature_celsius", celsius);
      }
    }
    if (api_.GetPowerUsage != nullptr) {
      unsigned int milliwatts = 0;
      if (Check(api_.GetPowerUsage(device, &milliwatts), id, "nvmlDeviceGetPowerUsage", lost)) {
        add("devscope_device_power_watts", milliwatts / 1e3);
      }
    }
    if (api_.GetTotalEnergyConsumption != nullptr) {
      unsigned long long millijoules = 0;
      if (Check(api_.GetTotalEnergyConsumption(device, &millijoules), id,
                "nvmlDeviceGetTotalEnergyConsumption", lost)) {
        add("devscope_device_energy_joules_total", static_cast<double>(millijoules) / 1e3,
            kCounter);
      }
    }
    if (api_.GetTotalEccErrors != nullptr) {
      // Aggregate counts: over the board's lifetime, so they never go down (a counter).
      for (auto [type, kind] : {std::pair{NVML_MEMORY_ERROR_TYPE_CORRECTED, "ecc_corrected"},
                                std::pair{NVML_MEMORY_ERROR_TYPE_UNCORRECTED, "ecc_uncorrected"}}) {
        unsigned long long count = 0;
        if (Check(api_.GetTotalEccErrors(device, type, NVML_AGGREGATE_ECC, &count), id,
                  "nvmlDeviceGetTotalEccErrors", lost)) {
          add("devscope_device_errors_total", static_cast<double>(count), kCounter,
              {{"kind", kind}});
        }
      }
    }
    return samples;
  }

  HealthSignal Health(const std::string& uuid, unsigned int gpu_instance,
                      const std::map<XidScope, XidState>& xids, bool lost) const {
    if (lost) return {false, "gpu lost"};
    auto it = xids.find({uuid, gpu_instance});
    if (it != xids.end()) return {false, absl::StrCat("xid ", it->second.xid)};
    return {};
  }

  // The critical XIDs still in force, dropping (and logging) those past the recovery period.
  std::map<XidScope, XidState> CurrentXids() {
    const absl::Time now = absl::Now();
    absl::MutexLock lock(&mu_);
    if (xid_recovery_ > absl::ZeroDuration()) {
      for (auto it = xids_.begin(); it != xids_.end();) {
        if (now - it->second.last >= xid_recovery_) {
          Log().info("collector=nvml device={} gpu_instance={} recovered: no critical XID for {}",
                     it->first.first, ScopeName(it->first.second),
                     absl::FormatDuration(xid_recovery_));
          it = xids_.erase(it);
        } else {
          ++it;
        }
      }
    }
    return xids_;
  }

  // A GPU that NVML did not list at start (or whose registration failed then) is registered for
  // XID events when a pass first sees it; tried once per GPU.
  void RegisterForXids(nvmlDevice_t device, const std::string& uuid) {
    if (event_set_ == nullptr || WithEvents(uuid) || !xid_tried_.insert(uuid).second) return;
    const nvmlReturn_t r = api_.RegisterEvents(device, nvmlEventTypeXidCriticalError, event_set_);
    if (r != NVML_SUCCESS) {
      Log().warn("collector=nvml device={} nvmlDeviceRegisterEvents: {}: no XID health", uuid,
                 api_.Error(r));
      return;
    }
    Log().info("collector=nvml device={} registered for XID events", uuid);
    absl::MutexLock lock(&mu_);
    xid_counts_[uuid] = 0;
  }

  bool WithEvents(const std::string& uuid) {
    absl::MutexLock lock(&mu_);
    return xid_counts_.count(uuid) > 0;
  }

  void AddXidCount(const std::string& uuid, std::vector<Sample>& samples) {
    absl::MutexLock lock(&mu_);
    Sample sample;
    sample.name = "devscope_device_errors_total";
    sample.kind = Sample::Kind::kCounter;
    sample.labels = {{"kind", "xid"}};
    sample.value = static_cast<double>(xid_counts_[uuid]);
    samples.push_back(std::move(sample));
  }

  // Registers every GPU for XID events and starts the thread that waits for them. Without an
  // event set (old driver, no permission) devscope still collects, without XID health.
  void StartEvents(unsigned int count) {
    if (api_.EventSetCreate == nullptr || api_.RegisterEvents == nullptr ||
        api_.EventSetWait == nullptr || api_.EventSetFree == nullptr) {
      Log().warn("collector=nvml the NVML library has no event API: no XID health");
      return;
    }
    if (nvmlReturn_t r = api_.EventSetCreate(&event_set_); r != NVML_SUCCESS) {
      Log().warn("collector=nvml nvmlEventSetCreate: {}: no XID health", api_.Error(r));
      event_set_ = nullptr;
      return;
    }
    int registered = 0;
    for (unsigned int index = 0; index < count; ++index) {
      nvmlDevice_t device = nullptr;
      char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = {};
      if (api_.GetHandleByIndex(index, &device) != NVML_SUCCESS ||
          api_.GetUUID(device, uuid, sizeof(uuid)) != NVML_SUCCESS) {
        continue;
      }
      uuid[sizeof(uuid) - 1] = '\0';
      xid_tried_.insert(uuid);
      const nvmlReturn_t r = api_.RegisterEvents(device, nvmlEventTypeXidCriticalError, event_set_);
      if (r != NVML_SUCCESS) {
        Log().warn("collector=nvml device={} nvmlDeviceRegisterEvents: {}: no XID health", uuid,
                   api_.Error(r));
        continue;
      }
      ++registered;
      absl::MutexLock lock(&mu_);
      xid_counts_[uuid] = 0;
    }
    if (registered == 0) {
      // Nothing to wait for: no XID health, and no GPU registered later either.
      api_.EventSetFree(event_set_);
      event_set_ = nullptr;
      return;
    }
    event_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (event_fd_ < 0) Log().warn("collector=nvml eventfd failed: XIDs wait for the next pass");
    event_thread_ = std::thread([this] { EventLoop(); });
  }

  void EventLoop() {
    // Nothing may escape the thread (a std::string allocation could throw).
    try {
      int failures = 0;
      while (!stop_.HasBeenNotified()) {
        nvmlEventData_t data = {};
        const nvmlReturn_t r = api_.EventSetWait(event_set_, &data, kEventWaitMs);
        if (r == NVML_ERROR_TIMEOUT) continue;
        if (r != NVML_SUCCESS) {
          // E.g. a GPU lost under the event set: log once, back off instead of spinning.
          if (failures++ == 0) Log().warn("collector=nvml nvmlEventSetWait_v2: {}", api_.Error(r));
          stop_.WaitForNotificationWithTimeout(absl::Seconds(1));
          continue;
        }
        failures = 0;
        if ((data.eventType & nvmlEventTypeXidCriticalError) == 0) continue;
        OnXid(data);
      }
    } catch (...) {
      Log().error("collector=nvml the XID event thread failed; XIDs are no longer watched");
    }
  }

  void OnXid(const nvmlEventData_t& data) {
    char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = {};
    if (data.device == nullptr || api_.GetUUID(data.device, uuid, sizeof(uuid)) != NVML_SUCCESS) {
      Log().warn("collector=nvml XID {} on a GPU NVML cannot name", data.eventData);
      return;
    }
    uuid[sizeof(uuid) - 1] = '\0';
    const uint64_t xid = data.eventData;
    const bool ignored = ignored_xids_.count(xid) > 0;
    {
      absl::MutexLock lock(&mu_);
      ++xid_counts_[uuid];
      if (!ignored) xids_[{uuid, data.gpuInstanceId}] = {xid, absl::Now()};
    }
    if (ignored) {
      Log().info("collector=nvml device={} xid={} (an application error: health unchanged)", uuid,
                 xid);
      return;
    }
    Log().warn("collector=nvml device={} gpu_instance={} critical xid={}: unhealthy", uuid,
               ScopeName(data.gpuInstanceId), xid);
    if (event_fd_ >= 0) {
      const uint64_t one = 1;
      (void)!write(event_fd_, &one, sizeof(one));
    }
  }

  const NvmlApi api_;
  const std::string sysfs_;
  const std::string devfs_;
  const std::string mig_minors_file_;
  std::map<std::string, unsigned int> mig_minors_;  // MigMinors(); Collect's thread only
  const std::string advertise_resource_;
  const std::set<uint64_t> ignored_xids_;
  const absl::Duration xid_recovery_;
  bool initialized_ = false;
  nvmlEventSet_t event_set_ = nullptr;
  int event_fd_ = -1;

  absl::Mutex mu_;
  // Critical XIDs in force, written by the event thread, read by Collect.
  std::map<XidScope, XidState> xids_ ABSL_GUARDED_BY(mu_);
  // XID events seen per registered GPU (all XIDs, ignored ones included).
  std::map<std::string, uint64_t> xid_counts_ ABSL_GUARDED_BY(mu_);

  // Collect's own state (one call at a time, on the runner's thread).
  std::map<unsigned int, DeviceInfo> known_;  // by NVML index: to report a lost GPU
  std::set<std::string> warned_;
  std::set<std::string> xid_tried_;  // GPUs whose XID registration was tried (Collect's thread)

  absl::Notification stop_;
  std::thread event_thread_;  // last: started after everything it reads
};

}  // namespace

absl::StatusOr<std::unique_ptr<Collector>> NewNvmlCollector(const Config& config) {
  absl::StatusOr<NvmlApi> api = LoadNvml(config.nvml_library);
  if (!api.ok()) return api.status();
  auto collector = std::make_unique<NvmlCollector>(config, *api);
  if (absl::Status status = collector->Start(); !status.ok()) return status;
  return collector;
}

}  // namespace devscope
