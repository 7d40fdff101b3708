// The devicedir collector: any device described by a directory of small files (layout in
// interface.md, "The devicedir layout"). Its parsers are exposed for the tests.
#ifndef DEVSCOPE_COLLECTORS_DEVICEDIR_H_
#define DEVSCOPE_COLLECTORS_DEVICEDIR_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "collectors/collector.h"

namespace devscope {

// Problems found while parsing one file: each "FILE:LINE: problem". A bad line is skipped and the
// rest of the file kept.
using ParseErrors = std::vector<std::string>;

// Parses Prometheus text format strictly: only names starting devscope_device_, optional
// "# HELP"/"# TYPE" (gauge or counter) lines, labels with escapes, a value (NaN and +/-Inf
// allowed), no timestamps. The labels device, resource, namespace, pod and container are devscope's
// and refused. `file` names the file in error messages.
std::vector<Sample> ParsePromText(absl::string_view text, absl::string_view file,
                                  ParseErrors& errors);

// Parses an `allocate` file: device HOST [CONTAINER [PERMS]], env K=V, mount HOST CONTAINER [ro],
// annotation K=V, cdi VENDOR/CLASS=NAME; blank lines and # comments are allowed.
AllocateSpec ParseAllocateFile(absl::string_view text, absl::string_view file, ParseErrors& errors);

// Parses an `info` file (key=value lines) into `info`: vendor, model, serial, pci_address and
// uuid; pci_address and uuid also become aliases. Unknown keys are ignored (forward compatible).
void ParseInfoFile(absl::string_view text, absl::string_view file, DeviceInfo& info,
                   ParseErrors& errors);

// Whether `name` is a valid devicedir device ID: 1..63 of [A-Za-z0-9._-].
bool IsValidDeviceId(absl::string_view name);

class DevicedirCollector : public Collector {
 public:
  // `root` is --collector.devicedir.path. The inotify watch is set up lazily (the directory may
  // appear later); without inotify the collector still works at the polling interval.
  explicit DevicedirCollector(std::string root);
  ~DevicedirCollector() override;
  DevicedirCollector(const DevicedirCollector&) = delete;
  DevicedirCollector& operator=(const DevicedirCollector&) = delete;

  absl::string_view name() const override { return "devicedir"; }
  absl::StatusOr<std::vector<DeviceReport>> Collect() override;
  int watch_fd() const override { return inotify_fd_; }
  bool DrainWatch() override;
  uint64_t parse_errors() const override { return parse_errors_; }

 private:
  // Reads one device directory; nullopt (with `skip_reason` set) when it is not a usable device.
  std::optional<DeviceReport> ReadDevice(const std::string& id, ParseErrors& errors,
                                         std::string& skip_reason);
  // Adds watches for the root and every device directory, forgets the vanished ones.
  void SyncWatches(const std::vector<std::string>& device_dirs);

  const std::string root_;
  // Everything below is used only from the collector's own thread (Collect/DrainWatch).
  int inotify_fd_ = -1;
  int root_wd_ = -1;
  std::map<std::string, int> dir_wds_;  // device dir name -> inotify watch descriptor
  uint64_t parse_errors_ = 0;           // bad lines in the last pass
  // What was logged last pass (skips, bad lines), so each problem is logged once, not per pass.
  std::set<std::string> logged_problems_;
  bool root_error_logged_ = false;
};

}  // namespace devscope

#endif  // DEVSCOPE_COLLECTORS_DEVICEDIR_H_
