// CDI (the Container Device Interface) specs for the resources devscope's plugin advertises: one
// JSON file per resource in a CDI directory (/var/run/cdi by default), which containerd 1.7+,
// CRI-O and podman read, naming each device with the device nodes, mounts and variables of its
// Allocate answer. Allocate can then answer with the device's CDI name instead of (or beside) the
// device specs.
//
// The kind is the resource name itself (example.com/widget: vendor example.com, class widget);
// the device name is the device ID. The spec is version 0.5.0 (device nodes with a host path),
// 0.6.0 when the class holds a dot, which 0.5.0 does not allow. A resource or device that CDI
// cannot name is left out (logged once); its devices keep being answered with device specs.
#ifndef DEVSCOPE_DEVICEPLUGIN_CDI_SPEC_H_
#define DEVSCOPE_DEVICEPLUGIN_CDI_SPEC_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "deviceplugin/resource_devices.h"
#include "google/protobuf/struct.pb.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"

namespace devscope {

// A device node's type and numbers, as stat() gives them.
struct DeviceNumbers {
  char type = 'c';  // 'c' or 'b'
  uint32_t major = 0;
  uint32_t minor = 0;
};

// How the spec learns a node's numbers from its host path (which it cannot stat directly where
// the host's /dev is mounted elsewhere, as in the chart's container). nullopt: not written; the
// runtime then stats the host path itself.
using NodeNumbers = std::function<std::optional<DeviceNumbers>(const std::string& host_path)>;

// The numbers of the device node at `path` (stat), or nullopt when it is not one.
std::optional<DeviceNumbers> StatDeviceNode(const std::string& path);

// OK when the resource name is a valid CDI kind (vendor and class start with a letter, hold
// letters, digits, '_', '-' and '.', and end with a letter or digit); else why not.
absl::Status ValidateCdiKind(absl::string_view resource);
// Whether `id` is a valid CDI device name (letters, digits, '_', '-', '.', ':'; starting and
// ending with a letter or digit).
bool IsValidCdiDeviceName(absl::string_view id);
// "example.com/widget=widget-0".
std::string CdiDeviceName(absl::string_view resource, absl::string_view id);

// The spec of one resource as JSON: each device by its ID, with its device nodes, variables and
// mounts (PluginDevice::allocate). Devices whose ID CDI cannot name are left out. The kind must be
// valid (ValidateCdiKind).
std::string RenderCdiSpec(const std::string& resource, const std::vector<PluginDevice>& devices,
                          const NodeNumbers& numbers);

// Writes, rewrites and removes the spec files of one CDI directory. One owner thread (the plugin
// manager's control thread); not thread-safe.
class CdiSpecWriter {
 public:
  // `current`: devscope_device_plugin_cdi_spec_current{resource}, or null.
  CdiSpecWriter(std::string dir, NodeNumbers numbers,
                prometheus::Family<prometheus::Gauge>* current);
  ~CdiSpecWriter();  // RemoveAll()
  CdiSpecWriter(const CdiSpecWriter&) = delete;
  CdiSpecWriter& operator=(const CdiSpecWriter&) = delete;

  // Keeps the specs in step with the advertised devices: writes each resource's spec, removes the
  // specs of resources no longer there, and sets each device's cdi_name when the spec on disk
  // names it (clears it when not), so that Allocate never names a device no spec holds.
  void Apply(std::map<std::string, std::vector<PluginDevice>>& by_resource);
  // Makes `resource`'s spec hold `devices` (written through a temporary file and a rename, so a
  // runtime never reads half a spec; not rewritten when unchanged and still there). Returns the
  // IDs the spec on disk names now: empty when it could not be written (logged once per failure
  // streak; the gauge says 0) or the resource is not a valid CDI kind (logged once).
  std::set<std::string> Write(const std::string& resource,
                              const std::vector<PluginDevice>& devices);
  // Removes `resource`'s spec (the resource went away).
  void Remove(const std::string& resource);
  // Removes every spec this writer wrote (devscope stops).
  void RemoveAll();
  // Removes the specs an earlier devscope left behind (it was killed): every devscope-*.json.
  void RemoveLeftovers();

  // The spec file's path for `resource`: DIR/devscope-VENDOR-CLASS.json.
  std::string PathOf(const std::string& resource) const;

 private:
  struct Written {
    std::optional<google::protobuf::Struct> spec;  // as on disk; none after a failed write
    std::set<std::string> ids;
    bool failing = false;
  };
  absl::Status WriteFile(const std::string& path, const std::string& content) const;
  void SetCurrent(const std::string& resource, bool current);

  const std::string dir_;
  const NodeNumbers numbers_;
  prometheus::Family<prometheus::Gauge>* const current_;
  std::map<std::string, Written> written_;
  std::set<std::string> invalid_logged_;  // resources and devices CDI cannot name, logged once
};

}  // namespace devscope

#endif  // DEVSCOPE_DEVICEPLUGIN_CDI_SPEC_H_
