// devscope's whole configuration: command-line flags (exporter/flags.cc) and the YAML file given
// with --config.file (common/config.cc). Built once at start-up, then read-only.
#ifndef DEVSCOPE_COMMON_CONFIG_H_
#define DEVSCOPE_COMMON_CONFIG_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace devscope {

// --collector.NAME / --no-collector.NAME; auto = on when the hardware is present.
enum class CollectorToggle { kAuto, kOn, kOff };

// How GetPreferredAllocation picks among equally NUMA-aligned devices.
enum class AllocationPolicy { kPack, kSpread };

// Per-resource device plugin settings (YAML device_plugin.resources.<name>).
struct PluginResourceConfig {
  AllocationPolicy allocation_policy = AllocationPolicy::kPack;
  bool pre_start_container = false;  // advertise and serve PreStartContainer
};

struct HardwareCollectorConfig {
  CollectorToggle toggle = CollectorToggle::kAuto;
  // The extended resource name devscope's plugin advertises these devices under; empty: devscope
  // does not advertise them (a vendor plugin may), it only tracks and joins them.
  std::string advertise_resource;
};

struct Config {
  // --web.*
  std::string listen_address = ":9410";
  std::string telemetry_path = "/metrics";
  std::string web_config_file;

  // --kubelet.*, --pod-resources.*
  std::string pod_resources_socket = "/var/lib/kubelet/pod-resources/kubelet.sock";
  std::string device_plugins_dir = "/var/lib/kubelet/device-plugins";
  absl::Duration pod_resources_interval = absl::Seconds(1);
  uint64_t pod_resources_max_message_size = 64ULL << 20;

  // --path.*
  std::string sysfs = "/sys";
  std::string devfs = "/dev";

  // Collectors.
  std::string devicedir_path;  // --collector.devicedir.path; empty: devicedir off
  HardwareCollectorConfig nvml;
  HardwareCollectorConfig drm;
  HardwareCollectorConfig netdev;
  std::string nvml_library = "libnvidia-ml.so.1";  // YAML collectors.nvml.library
  // XIDs that do not make a GPU unhealthy (application errors). YAML collectors.nvml.ignored_xids.
  std::vector<uint64_t> nvml_ignored_xids = {13, 31, 43, 45, 68};
  // A GPU made unhealthy by a critical XID becomes healthy again after this long without another
  // critical XID (a reset or a recovered fault leaves it quiet; a broken GPU keeps reporting).
  // Zero: never recover while devscope runs. YAML collectors.nvml.xid_recovery.
  absl::Duration nvml_xid_recovery = absl::Minutes(10);
  // The driver's table of MIG capability minors, for the /dev/nvidia-caps nodes a MIG device
  // needs. YAML collectors.nvml.mig_minors_file.
  std::string nvml_mig_minors_file = "/proc/driver/nvidia-caps/mig-minors";
  absl::Duration collector_interval = absl::Seconds(5);  // YAML collectors.interval
  // A device whose last good sample is older than this is dropped (YAML collectors.stale_after).
  absl::Duration collector_stale_after = absl::Minutes(1);

  // Health model (YAML health.*).
  std::optional<double> max_temperature_celsius;

  // Device plugin.
  bool device_plugin = true;                                     // --[no-]device-plugin
  std::map<std::string, PluginResourceConfig> plugin_resources;  // YAML device_plugin.resources
  // YAML device_plugin.plugins_registry_dir: when set, register through the plugin watcher there
  // instead of calling Register on kubelet.sock.
  std::string plugins_registry_dir;

  std::string config_file;  // --config.file
  std::string log_level = "info";
  std::string log_format = "logfmt";

  // The settings for `resource`, defaults when the YAML names none.
  PluginResourceConfig PluginSettings(const std::string& resource) const {
    auto it = plugin_resources.find(resource);
    return it == plugin_resources.end() ? PluginResourceConfig{} : it->second;
  }
};

// Reads the YAML file at `path` into `config` (over the flag values). InvalidArgument naming the
// file, line and problem for anything unreadable, unknown or malformed.
absl::Status LoadConfigFile(const std::string& path, Config& config);

}  // namespace devscope

#endif  // DEVSCOPE_COMMON_CONFIG_H_
