// The devicedir collector: any device described by a directory of small files (layout in
// interface.md, "The devicedir layout"). The files' parsers: collectors/devicedir_files.h and
// collectors/prometheus_text_parser.h.
#ifndef DEVSCOPE_COLLECTORS_DEVICEDIR_H_
#define DEVSCOPE_COLLECTORS_DEVICEDIR_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "collectors/collector.h"
#include "collectors/devicedir_trust.h"
#include "collectors/node_roots.h"
#include "common/options.h"
#include "common/warn_once.h"

namespace devscope {

struct DevicedirOptions {
  std::string path;  // --collector.devicedir.path; empty: nothing to collect
  // --collector.devicedir.owner: who may own the devicedir and its files besides root ("root":
  // only root; a user name or a numeric uid). docs/security.md, "The devicedir".
  std::string owner = "root";
  // collectors.devicedir.mount_prefixes: when not empty, every mount host path of an allocate
  // file must be one of these directories or below one.
  std::vector<std::string> mount_prefixes;
};
void DeclareOptions(OptionDeclarer& d, DevicedirOptions& o);

// NotFound when no path is set; a path that does not exist (yet) makes a collector whose passes
// fail until it appears.
absl::StatusOr<std::unique_ptr<Collector>> NewDevicedirCollector(const DevicedirOptions& options,
                                                                 const NodeRoots& roots);

// Problems a pass skipped: each "FILE:LINE: problem" or "PATH: skipped, why".
using ParseErrors = std::vector<std::string>;

// A pass reads only the device directories written since the last pass (inotify on the root and
// on every device directory), and every directory on the first pass, after a directory came or
// went, when inotify is unavailable or lost events, and once every `full_rescan`: at 1,024
// devices a full pass opens some 5,000 files, an unchanged node none.
class DevicedirCollector : public Collector {
 public:
  // `root` is --collector.devicedir.path; what it holds must be owned by root or `owner`
  // (collectors/devicedir_trust.h), and mounts must be within `mount_prefixes` when it is not
  // empty. The inotify watch is set up lazily (the directory may appear later); without inotify
  // every pass reads everything.
  DevicedirCollector(std::string root, uid_t owner, std::vector<std::string> mount_prefixes = {},
                     absl::Duration full_rescan = absl::Minutes(1));
  ~DevicedirCollector() override;
  DevicedirCollector(const DevicedirCollector&) = delete;
  DevicedirCollector& operator=(const DevicedirCollector&) = delete;

  absl::string_view name() const override { return "devicedir"; }
  absl::StatusOr<std::vector<DeviceReport>> Collect() override;
  int watch_fd() const override { return inotify_fd_; }
  bool DrainWatch() override;
  uint64_t parse_errors() const override { return parse_errors_; }
  // How many device directories the last pass read (tests, benchmarks).
  size_t directories_read() const { return directories_read_; }

 private:
  // One device directory as the last read of it left it.
  struct Entry {
    std::optional<DeviceReport> report;  // nullopt: refused or skipped (why is in problems)
    ParseErrors problems;
  };

  // Reads one device directory: the device, or why it is refused (PermissionDenied,
  // FailedPrecondition) or skipped (anything else).
  absl::StatusOr<DeviceReport> ReadDevice(const CheckedDir& dir, ParseErrors& errors) const;
  // Entry `name` of the devicedir, read afresh.
  Entry ReadEntry(const CheckedDir& root, const std::string& name);
  // Lists the root and reads every device directory into cache_.
  absl::Status FullPass(const CheckedDir& root);
  // Fails the pass for a devicedir that cannot be read or is refused, logged once.
  absl::Status RootFailed(const absl::Status& status);
  // Adds watches for the root and every device directory, forgets the vanished ones.
  void SyncWatches(const std::vector<std::string>& device_dirs);
  // Reads the pending inotify events into changed_ and rescan_due_; true when one calls for a
  // pass.
  bool ReadEvents();

  const std::string root_;
  const uid_t owner_;
  const std::vector<std::string> mount_prefixes_;
  const absl::Duration full_rescan_;
  // Everything below is used only from the collector's own thread (Collect/DrainWatch).
  int inotify_fd_ = -1;
  int root_wd_ = -1;
  std::map<int, std::string> dir_wds_;  // inotify watch descriptor -> device directory name
  bool watches_complete_ = false;       // every device directory has a watch
  bool rescan_due_ = true;              // the next pass reads everything
  absl::Time last_full_pass_ = absl::InfinitePast();
  std::set<std::string> changed_;       // device directories written since the last pass
  std::map<std::string, Entry> cache_;  // by device directory name, the order devices come in
  ParseErrors root_problems_;           // entries of the root that are not device directories
  uint64_t parse_errors_ = 0;           // problems in the last pass
  size_t directories_read_ = 0;         // by the last pass
  // Skips and bad lines, each logged once while it lasts, not on every pass.
  WarnOnce problems_{"devicedir: "};
  bool root_error_logged_ = false;
};

}  // namespace devscope

#endif  // DEVSCOPE_COLLECTORS_DEVICEDIR_H_
