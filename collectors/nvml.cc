// The nvml collector: NVIDIA GPUs and their MIG instances through libnvidia-ml, loaded with
// dlopen() at run time (collectors/nvml_loader.h) so devscope builds and runs where there is no
// NVIDIA driver.
//
// Health. A GPU that NVML reports lost (NVML_ERROR_GPU_IS_LOST) is unhealthy while it stays lost.
// A critical XID event that is not in collectors.nvml.ignored_xids makes the GPU unhealthy (for an
// XID scoped to a MIG GPU instance, only that MIG device) until collectors.nvml.xid_recovery passes
// without another: collectors/nvml_xid_watcher.h, whose eventfd is this collector's watch_fd().
// MIG devices: collectors/nvml_mig.h.
//
// Telemetry: collectors/nvml_telemetry.h; the processes using each device:
// collectors/nvml_processes.h. XIDs are also counted per GPU and XID, and the latest is reported
// with its time (devscope_device_xid_errors_total, devscope_device_last_xid_timestamp_seconds).
#include "collectors/nvml.h"

#include <dlfcn.h>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "collectors/collector.h"
#include "collectors/nvml_loader.h"
#include "collectors/nvml_mig.h"
#include "collectors/nvml_processes.h"
#include "collectors/nvml_telemetry.h"
#include "collectors/nvml_xid_watcher.h"
#include "collectors/registry.h"
#include "common/clock.h"
#include "common/files.h"
#include "common/pci_address.h"
#include "common/warn_once.h"

namespace devscope {
namespace {

namespace fs = std::filesystem;

class NvmlCollector : public Collector {
 public:
  NvmlCollector(const NvmlOptions& options, const NodeRoots& roots, NvmlApi api, Clock& clock)
      : api_(api),
        roots_(roots),
        mig_minors_(options.mig_minors_file),
        advertise_resource_(options.advertise_resource),
        xids_(std::make_unique<NvmlXidWatcher>(
            api_, std::set<uint64_t>(options.ignored_xids.begin(), options.ignored_xids.end()),
            options.xid_recovery, clock)) {}

  ~NvmlCollector() override {
    xids_.reset();  // its thread and event set go before the library does
    if (initialized_) api_.Shutdown();
    dlclose(api_.handle);
  }

  absl::string_view name() const override { return "nvml"; }
  int watch_fd() const override { return xids_->event_fd(); }

  bool DrainWatch() override {
    xids_->DrainEventFd();
    return true;
  }

  // nvmlInit_v2, then the XID watcher. The status is the factory's.
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
    driver_versions_ = ReadDriverVersions(api_);
    unsigned int count = 0;
    if (nvmlReturn_t r = api_.GetCount(&count); r != NVML_SUCCESS) {
      return absl::UnavailableError(absl::StrCat("nvmlDeviceGetCount_v2: ", api_.Error(r)));
    }
    if (count == 0) return absl::NotFoundError("NVML reports no GPU");
    xids_->Start(count);
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<DeviceReport>> Collect() override {
    unsigned int count = 0;
    if (nvmlReturn_t r = api_.GetCount(&count); r != NVML_SUCCESS) {
      return absl::UnavailableError(absl::StrCat("nvmlDeviceGetCount_v2: ", api_.Error(r)));
    }
    const NvmlXidWatcher::Seen xids = xids_->Snapshot();
    std::vector<DeviceReport> reports;
    for (unsigned int index = 0; index < count; ++index) {
      nvmlDevice_t device = nullptr;
      if (nvmlReturn_t r = api_.GetHandleByIndex(index, &device); r != NVML_SUCCESS) {
        // A GPU that fell off the bus: keep reporting what we knew of it, unhealthy.
        ReportKnown(
            index, r == NVML_ERROR_GPU_IS_LOST ? "gpu lost" : absl::StrCat("nvml: ", api_.Error(r)),
            reports);
        warn_.Warn(
            absl::StrCat("handle/", index, "/", r),
            absl::StrCat("GPU index ", index, ": nvmlDeviceGetHandleByIndex_v2: ", api_.Error(r)));
        continue;
      }
      CollectGpu(index, device, xids, reports);
    }
    return reports;
  }

 private:
  // What the last pass knew of the GPU at `index`, unhealthy for `reason`; nothing when unknown.
  void ReportKnown(unsigned int index, std::string reason, std::vector<DeviceReport>& reports) {
    auto known = known_.find(index);
    if (known == known_.end()) return;
    DeviceReport report;
    report.info = known->second;
    report.health = {false, std::move(reason)};
    reports.push_back(std::move(report));
  }

  // The GPU's identity: name, serial, PCI address and NUMA node.
  void ReadIdentity(nvmlDevice_t device, DeviceInfo& info, bool& lost) {
    const std::string& uuid = info.id;
    info.vendor = "NVIDIA";
    info.model =
        nvml_.GetString(api_.GetName, device, uuid, "nvmlDeviceGetName", lost).value_or("");
    info.serial =
        nvml_.GetString(api_.GetSerial, device, uuid, "nvmlDeviceGetSerial", lost).value_or("");
    if (api_.GetPciInfo == nullptr) return;
    nvmlPciInfo_t pci = {};
    if (!nvml_.Check(api_.GetPciInfo(device, &pci), uuid, "nvmlDeviceGetPciInfo_v3", lost)) return;
    pci.busId[sizeof(pci.busId) - 1] = '\0';
    info.pci_address = NormalizePciAddress(pci.busId).value_or(absl::AsciiStrToLower(pci.busId));
    info.aliases.push_back(info.pci_address);
    // <sysfs>/bus/pci/devices/<addr>/numa_node: -1 when the platform gives no affinity.
    if (auto numa = ReadTrimmed(
            absl::StrCat(roots_.sysfs, "/bus/pci/devices/", info.pci_address, "/numa_node"))) {
      int64_t node = -1;
      if (absl::SimpleAtoi(*numa, &node) && node >= 0) info.numa_node = node;
    }
  }

  // /dev/nvidia<minor> and the control nodes every CUDA process opens. Returns the minor, when
  // NVML gives it.
  std::optional<unsigned int> AddGpuNodes(nvmlDevice_t device, DeviceInfo& info, bool& lost) {
    unsigned int minor = 0;
    const bool minor_known =
        api_.GetMinorNumber != nullptr &&
        nvml_.Check(api_.GetMinorNumber(device, &minor), info.id, "nvmlDeviceGetMinorNumber", lost);
    if (minor_known) AddNode(info.allocate, absl::StrCat("nvidia", minor), /*required=*/true);
    for (const char* node : {"nvidiactl", "nvidia-uvm", "nvidia-uvm-tools"}) {
      AddNode(info.allocate, node, /*required=*/false);
    }
    if (!minor_known) return std::nullopt;
    return minor;
  }

  void CollectGpu(unsigned int index, nvmlDevice_t device, const NvmlXidWatcher::Seen& xids,
                  std::vector<DeviceReport>& reports) {
    bool lost = false;
    std::optional<std::string> uuid = nvml_.GetString(
        api_.GetUUID, device, absl::StrCat("index", index), "nvmlDeviceGetUUID", lost);
    if (!uuid) {
      if (lost) ReportKnown(index, "gpu lost", reports);
      return;
    }
    DeviceReport report;
    DeviceInfo& info = report.info;
    info.id = *uuid;
    ReadIdentity(device, info, lost);
    // MIG: when enabled, the MIG devices are what pods get, so they are what is advertised.
    const std::vector<nvmlDevice_t> migs = ListMigDevices(nvml_, device, *uuid, lost);
    info.advertise = !advertise_resource_.empty() && migs.empty();
    info.resource = advertise_resource_.empty() ? "nvidia.com/gpu" : advertise_resource_;
    const std::optional<unsigned int> minor = AddGpuNodes(device, info, lost);
    info.minor = minor;

    report.samples = Telemetry(device, *uuid, lost);
    report.processes = processes_.Read(device, *uuid, lost);
    if (!lost) xids_->RegisterLate(device, *uuid);
    if (auto history = xids.history.find(*uuid); history != xids.history.end()) {
      AddXidSamples(history->second, report.samples);
    }
    report.health = Health(*uuid, NVML_INVALID_INSTANCE_ID, xids.in_force, lost);
    if (!lost) {
      known_[index] = info;
    } else if (auto known = known_.find(index); known != known_.end()) {
      info = known->second;  // what NVML can no longer say about a lost GPU
    }
    const DeviceInfo parent = info;
    const HealthSignal parent_health = report.health;
    reports.push_back(std::move(report));
    for (nvmlDevice_t mig : migs) {
      CollectMig(mig, parent, parent_health, minor, xids.in_force, reports);
    }
  }

  // One MIG device of the GPU `parent`, which it shares identity, nodes and (when the GPU is
  // unhealthy) health with.
  void CollectMig(nvmlDevice_t mig, const DeviceInfo& parent, const HealthSignal& parent_health,
                  std::optional<unsigned int> gpu_minor, const std::map<XidScope, XidState>& xids,
                  std::vector<DeviceReport>& reports) {
    bool lost = false;
    std::optional<std::string> uuid =
        nvml_.GetString(api_.GetUUID, mig, parent.id, "nvmlDeviceGetUUID(MIG)", lost);
    if (!uuid) return;
    DeviceReport report;
    DeviceInfo& info = report.info;
    info = parent;  // a MIG device is its GPU's, but for its ID, model and aliases
    info.id = *uuid;
    info.aliases.clear();
    // The minor names a MIG device only with its placement (collectors/collector.h).
    info.minor.reset();
    info.model =
        nvml_.GetString(api_.GetName, mig, *uuid, "nvmlDeviceGetName", lost).value_or(parent.model);
    info.advertise = !advertise_resource_.empty();
    const MigInstance instance = GetMigInstance(nvml_, mig, *uuid, lost);
    if (gpu_minor.has_value()) {
      for (const std::string& node :
           MigCapabilityNodes(mig_minors_.Get(warn_), mig_minors_.file(), roots_, *gpu_minor,
                              instance, *uuid, warn_)) {
        AddNode(info.allocate, node, /*required=*/true);
      }
    }
    report.samples = Telemetry(mig, *uuid, lost);
    report.processes = processes_.Read(mig, *uuid, lost);
    Sample sample;
    sample.name = "devscope_device_mig_info";
    sample.help = "A MIG device's parent GPU and GPU instance.";
    sample.labels = {{"parent_device", parent.id},
                     {"gpu_instance_id", instance.gpu_instance == NVML_INVALID_INSTANCE_ID
                                             ? std::string()
                                             : absl::StrCat(instance.gpu_instance)}};
    sample.value = 1;
    report.samples.push_back(std::move(sample));
    report.health = parent_health.healthy ? Health(parent.id, instance.gpu_instance, xids, lost)
                                          : parent_health;
    reports.push_back(std::move(report));
  }

  void AddNode(AllocateSpec& allocate, const std::string& node, bool required) {
    AllocateSpec::DeviceNode device_node;
    device_node.host_path = absl::StrCat("/dev/", node);  // the host's, as the kubelet reads it
    device_node.container_path = device_node.host_path;
    device_node.permissions = "rw";
    std::error_code ec;
    if (!required && !fs::exists(roots_.DevfsPath(device_node.host_path), ec)) return;
    allocate.device_nodes.push_back(std::move(device_node));
  }

  // The device's telemetry and the driver's versions.
  std::vector<Sample> Telemetry(nvmlDevice_t device, const std::string& id, bool& lost) {
    std::vector<Sample> samples = ReadTelemetry(nvml_, device, id, lost);
    if (std::optional<Sample> info = DriverInfoSample(driver_versions_)) {
      samples.push_back(std::move(*info));
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

  // Every XID event (errors_total kind xid), the events per XID since devscope started, and
  // the latest XID with when it came: unlike a gauge of the last XID alone, a repeat of the same
  // XID shows, and so does the time.
  static void AddXidSamples(const XidHistory& history, std::vector<Sample>& samples) {
    const auto add = [&](const char* name, Sample::Kind kind, LabelPairs labels, double value) {
      Sample sample;
      sample.name = name;
      sample.kind = kind;
      sample.labels = std::move(labels);
      sample.value = value;
      samples.push_back(std::move(sample));
    };
    constexpr auto kCounter = Sample::Kind::kCounter;
    add("devscope_device_errors_total", kCounter, {{"kind", "xid"}},
        static_cast<double>(history.events));
    for (const auto& [xid, count] : history.by_xid) {
      add("devscope_device_xid_errors_total", kCounter, {{"xid", absl::StrCat(xid)}},
          static_cast<double>(count));
    }
    if (history.last.has_value()) {
      add("devscope_device_last_xid_timestamp_seconds", Sample::Kind::kGauge,
          {{"xid", absl::StrCat(history.last->xid)}},
          absl::ToDoubleSeconds(history.last->last - absl::UnixEpoch()));
    }
  }

  const NvmlApi api_;
  WarnOnce warn_{"collector=nvml "};
  NvmlCaller nvml_{api_, warn_};
  const NodeRoots roots_;
  MigMinorsTable mig_minors_;
  const std::string advertise_resource_;
  bool initialized_ = false;
  NvmlDriverVersions driver_versions_;  // read once, at Start
  // Collect's own state (one call at a time, on the runner's thread).
  std::map<unsigned int, DeviceInfo> known_;  // by NVML index: to report a lost GPU
  NvmlProcessReader processes_{nvml_};
  std::unique_ptr<NvmlXidWatcher> xids_;  // reset first on destruction
};

}  // namespace

void DeclareOptions(OptionDeclarer& d, NvmlOptions& o) {
  DeclareAdvertiseOption(d, o.advertise_resource, "NVIDIA GPUs");
  d.Key("library", o.library, "libnvidia-ml to open with dlopen; absent: the collector stays off");
  d.Key("ignored_xids", o.ignored_xids,
        "XIDs that do not make a GPU unhealthy (application errors)");
  d.Key("xid_recovery", DurationValue(o.xid_recovery, /*zero_allowed=*/true),
        "A GPU made unhealthy by a critical XID is healthy again after this long without another "
        "(0: never, while devscope runs)");
  d.Key("mig_minors_file", o.mig_minors_file,
        "The driver's table of MIG capability minors (for a MIG device's /dev/nvidia-caps nodes)");
}

absl::StatusOr<std::unique_ptr<Collector>> NewNvmlCollector(const NvmlOptions& options,
                                                            const NodeRoots& roots) {
  return NewNvmlCollector(options, roots, Clock::Real());
}

absl::StatusOr<std::unique_ptr<Collector>> NewNvmlCollector(const NvmlOptions& options,
                                                            const NodeRoots& roots, Clock& clock) {
  absl::StatusOr<NvmlApi> api = LoadNvml(options.library);
  if (!api.ok()) return api.status();
  auto collector = std::make_unique<NvmlCollector>(options, roots, *api, clock);
  if (absl::Status status = collector->Start(); !status.ok()) return status;
  return collector;
}

}  // namespace devscope
