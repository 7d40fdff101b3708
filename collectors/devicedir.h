// The devicedir collector: any device described by a directory of small files (layout in
// interface.md, "The devicedir layout"). The files' parsers: collectors/devicedir_files.h and
// collectors/prometheus_text_parser.h.
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
#include "collectors/node_roots.h"
#include "common/options.h"
#include "common/warn_once.h"

namespace devscope {

struct DevicedirOptions {
  std::string path;  // --collector.devicedir.path; empty: nothing to collect
};
void DeclareOptions(OptionDeclarer& d, DevicedirOptions& o);

// NotFound when no path is set; a path that does not exist (yet) makes a collector whose passes
// fail until it appears.
absl::StatusOr<std::unique_ptr<Collector>> NewDevicedirCollector(const DevicedirOptions& options,
                                                                 const NodeRoots& roots);

// Problems a pass skipped: each "FILE:LINE: problem" or "PATH: skipped, why".
using ParseErrors = std::vector<std::string>;

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
  // Skips and bad lines, each logged once while it lasts, not on every pass.
  WarnOnce problems_{"devicedir: "};
  bool root_error_logged_ = false;
};

}  // namespace devscope

#endif  // DEVSCOPE_COLLECTORS_DEVICEDIR_H_
