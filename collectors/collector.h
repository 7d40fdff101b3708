// The collector interface: a new kind of hardware is one file implementing Collector.
//
// A collector discovers the node's devices of its kind and samples their telemetry and raw
// health signals. It runs on its own thread (see CollectorRunner), never on the scrape path, and
// knows nothing about HTTP, gRPC or the kubelet.
#ifndef DEVSCOPE_COLLECTORS_COLLECTOR_H_
#define DEVSCOPE_COLLECTORS_COLLECTOR_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace devscope {

using LabelPairs = std::vector<std::pair<std::string, std::string>>;

// What the device plugin's Allocate returns for a device (the devicedir `allocate` file, or the
// /dev nodes a hardware collector found).
struct AllocateSpec {
  struct DeviceNode {
    std::string host_path;
    std::string container_path;  // defaults to host_path
    std::string permissions;     // letters from r, w, m; defaults to "rw"
  };
  struct Mount {
    std::string host_path;
    std::string container_path;
    bool read_only = false;
  };
  std::vector<DeviceNode> device_nodes;
  LabelPairs envs;
  std::vector<Mount> mounts;
  LabelPairs annotations;
  std::vector<std::string> cdi_devices;  // fully qualified CDI names, vendor/class=name
};

// Identity of one device, from discovery.
struct DeviceInfo {
  std::string id;          // stable ID; the ID devscope's plugin advertises when it advertises it
  std::string resource;    // extended resource name it counts under, e.g. example.com/widget
  bool advertise = false;  // devscope's own device plugin advertises it under `resource`
  // Other IDs of the same device that other plugins use: GPU and MIG UUIDs, PCI addresses,
  // cardN, netdev names. The join matches pod-resources device IDs against id and aliases.
  std::vector<std::string> aliases;
  std::string vendor;
  std::string model;
  std::string serial;
  std::string pci_address;  // domain:bus:device.function, e.g. 0000:3b:00.0
  std::optional<int64_t> numa_node;
  // The minor number of the device's node, for a GPU /dev/nvidia<minor>; for a MIG device its
  // GPU's, given only together with `mig` (without it, it would name the whole GPU). DRA drivers
  // name devices by it (exporter/dra_match.h).
  std::optional<uint32_t> minor;
  // A MIG device's GPU instance profile and where the instance lies on its GPU, from
  // nvmlGpuInstanceGetInfo (profileId, placement.start, placement.size). NVIDIA's DRA driver
  // names MIG devices by them.
  struct MigPlacement {
    uint32_t profile_id = 0;
    uint32_t start = 0;
    uint32_t size = 0;
    bool operator==(const MigPlacement&) const = default;
  };
  std::optional<MigPlacement> mig;
  AllocateSpec allocate;
};

// One telemetry sample in base units (bytes, seconds, joules, celsius, watts, ratio 0..1).
struct Sample {
  enum class Kind { kGauge, kCounter };
  std::string name;  // full metric name, devscope_device_...
  Kind kind = Kind::kGauge;
  LabelPairs labels;  // extra labels beyond resource/device/holder, e.g. {"kind","ecc_dbe"}
  double value = 0;
  std::string help;  // empty: the renderer's default for the name
};

// A raw health signal as the collector sees it; the health model (collectors/health.h) makes
// the final decision from this and the configured thresholds.
struct HealthSignal {
  bool healthy = true;
  std::string reason;  // why not healthy, e.g. "xid 79", "link down", "health file says Unhealthy"
};

// A process using the device, from NVML's running compute and graphics process lists and its
// per-process utilisation samples. What NVML did not report is absent.
struct DeviceProcess {
  uint32_t pid = 0;
  std::optional<uint64_t> memory_used_bytes;
  std::optional<double> sm_utilization_ratio;       // 0..1
  std::optional<double> memory_utilization_ratio;   // 0..1
  std::optional<double> encoder_utilization_ratio;  // 0..1
  std::optional<double> decoder_utilization_ratio;  // 0..1
};

struct DeviceReport {
  DeviceInfo info;
  HealthSignal health;
  std::vector<Sample> samples;
  std::vector<DeviceProcess> processes;
};

class Collector {
 public:
  virtual ~Collector() = default;

  // The name used in --collector.NAME and the collector label, e.g. "devicedir".
  virtual absl::string_view name() const = 0;

  // Discovers and samples every device. Called from the collector's own thread, one call at a
  // time. A failure of one device is that device's problem (skip it, log once); an error return
  // means the whole collector failed this pass (collector_up 0).
  virtual absl::StatusOr<std::vector<DeviceReport>> Collect() = 0;

  // An fd that becomes readable when something changed (inotify on health files, an NVML event
  // set bridged to an eventfd), so the runner collects at once instead of at the next interval.
  // -1 when the collector has nothing to watch. The runner drains it by calling DrainWatch(),
  // which says whether what it read calls for a pass (a temporary file written beside a health
  // file, say, does not).
  virtual int watch_fd() const { return -1; }
  virtual bool DrainWatch() { return true; }

  // Problems that the last Collect() skipped and logged: bad lines (file:line) and unusable
  // entries, e.g. in a devicedir. Read by the runner right after Collect(), on the same thread.
  virtual uint64_t parse_errors() const { return 0; }
};

// The result of one collector's latest pass.
struct CollectorReport {
  std::string collector;
  bool up = false;
  std::string error;                       // why the last pass failed; empty when up
  absl::Duration duration;                 // how long the last pass took
  absl::Time time = absl::InfinitePast();  // when the devices below were collected
  uint64_t parse_errors = 0;          // problems the last pass skipped (Collector::parse_errors())
  std::vector<DeviceReport> devices;  // the last good pass's devices (see staleness rule)
};

// Every collector's latest report: what the join and the device plugin read.
struct DeviceSnapshot {
  std::vector<CollectorReport> collectors;
};

}  // namespace devscope

#endif  // DEVSCOPE_COLLECTORS_COLLECTOR_H_
