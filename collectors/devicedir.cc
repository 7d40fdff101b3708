#include "collectors/devicedir.h"

#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "collectors/devicedir_files.h"
#include "collectors/prometheus_text_parser.h"
#include "collectors/registry.h"
#include "common/files.h"
#include "common/log.h"

namespace devscope {
namespace {

// metrics.prom may hold many series; every other file is a few lines.
constexpr size_t kMetricsFileLimit = 1 << 20;
constexpr size_t kFileLimit = 64 * 1024;

void AddErrors(absl::string_view file, const std::vector<LineError>& errors, ParseErrors& out) {
  for (std::string& e : FormatLineErrors(file, errors)) out.push_back(std::move(e));
}

// The files of one device directory as read: nullopt when absent.
struct DeviceFiles {
  std::string resource;
  std::optional<std::string> health, numa_node, info, metrics, allocate;
  std::string health_error;  // the health file is there but could not be read
};

// Reads every file of the device directory `dir` before anything is parsed, so that one refused
// file refuses the device however the others look. The status when the device is refused (a
// file that breaks the ownership rule or is not a regular file) or has no usable resource file;
// other unreadable files cost only themselves (in `errors`; health and numa_node silently).
absl::StatusOr<DeviceFiles> ReadDeviceFiles(const CheckedDir& dir, ParseErrors& errors) {
  DeviceFiles files;
  absl::StatusOr<std::string> resource = dir.ReadFile("resource", kFileLimit);
  if (!resource.ok()) {
    if (absl::IsNotFound(resource.status())) return absl::NotFoundError("no resource file");
    return resource.status();
  }
  files.resource = *std::move(resource);
  const std::pair<const char*, std::optional<std::string>*> optional[] = {
      {"health", &files.health},
      {"numa_node", &files.numa_node},
      {"info", &files.info},
      {"metrics.prom", &files.metrics},
      {"allocate", &files.allocate}};
  for (const auto& [name, out] : optional) {
    const absl::string_view file = name;
    auto text = dir.ReadFile(name, file == "metrics.prom" ? kMetricsFileLimit : kFileLimit);
    if (text.ok()) {
      *out = *std::move(text);
    } else if (absl::IsPermissionDenied(text.status()) ||
               absl::IsFailedPrecondition(text.status())) {
      return text.status();
    } else if (file == "health" && !absl::IsNotFound(text.status())) {
      files.health_error = std::string(text.status().message());
    } else if (file != "numa_node" && !absl::IsNotFound(text.status())) {
      errors.push_back(std::string(text.status().message()));
    }
  }
  return files;
}

}  // namespace

DevicedirCollector::DevicedirCollector(std::string root, uid_t owner,
                                       std::vector<std::string> mount_prefixes,
                                       absl::Duration full_rescan)
    : root_(std::move(root)),
      owner_(owner),
      mount_prefixes_(std::move(mount_prefixes)),
      full_rescan_(full_rescan) {
  inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_fd_ < 0) {
    Log().warn("devicedir: inotify unavailable, changes are seen at the interval only error=\"{}\"",
               std::strerror(errno));
  }
}

DevicedirCollector::~DevicedirCollector() {
  if (inotify_fd_ >= 0) ::close(inotify_fd_);
}

absl::StatusOr<DeviceReport> DevicedirCollector::ReadDevice(const CheckedDir& dir,
                                                            ParseErrors& errors) const {
  absl::StatusOr<DeviceFiles> files = ReadDeviceFiles(dir, errors);
  if (!files.ok()) return files.status();
  DeviceReport report;
  DeviceInfo& info = report.info;
  info.advertise = true;  // a devicedir device declares its own resource
  absl::StatusOr<std::string> resource = ParseResourceFile(files->resource);
  if (!resource.ok()) return resource.status();
  info.resource = *std::move(resource);
  const std::string prefix = absl::StrCat(dir.path(), "/");
  // health: absent means Healthy; unreadable is not trusted as healthy.
  if (files->health) {
    Parsed<HealthSignal> parsed = ParseHealthFile(*files->health);
    report.health = std::move(parsed.value);
    AddErrors(prefix + "health", parsed.errors, errors);
  } else if (!files->health_error.empty()) {
    report.health = {false, absl::StrCat("health file unreadable: ", files->health_error)};
  }
  if (files->numa_node) {  // absent or unreadable: no NUMA affinity
    Parsed<std::optional<int64_t>> numa = ParseNumaNodeFile(*files->numa_node);
    info.numa_node = numa.value;
    AddErrors(prefix + "numa_node", numa.errors, errors);
  }
  if (files->info) {
    Parsed<InfoFile> parsed = ParseInfoFile(*files->info);
    ApplyInfoFile(parsed.value, info);
    AddErrors(prefix + "info", parsed.errors, errors);
  }
  if (files->metrics) {
    Parsed<std::vector<Sample>> parsed = ParsePrometheusText(*files->metrics);
    report.samples = std::move(parsed.value);
    report.samples.shrink_to_fit();  // kept until the file changes
    AddErrors(prefix + "metrics.prom", parsed.errors, errors);
  }
  if (files->allocate) {
    Parsed<AllocateSpec> parsed = ParseAllocateFile(*files->allocate);
    AddErrors(prefix + "allocate", parsed.errors, errors);
    // Host paths it may not ask for refuse the whole device: half of what it asks for would give
    // pods a broken device.
    absl::Status paths = CheckAllocateHostPaths(parsed.value, mount_prefixes_);
    if (!paths.ok()) {
      return absl::PermissionDeniedError(absl::StrCat(prefix, "allocate: ", paths.message()));
    }
    info.allocate = std::move(parsed.value);
  }
  return report;
}

DevicedirCollector::Entry DevicedirCollector::ReadEntry(const CheckedDir& root,
                                                        const std::string& name) {
  ++directories_read_;
  Entry entry;
  // Refusals (the ownership rule, a file that is not a regular file, host paths) name the file
  // and the rule; other skips (not a directory, no resource), the entry and the reason.
  auto refused = [&](const absl::Status& s) {
    entry.problems.push_back(absl::StrCat("device ", name, " refused: ", s.message()));
  };
  absl::StatusOr<CheckedDir> dir = root.OpenDir(name);
  if (!dir.ok()) {
    if (absl::IsPermissionDenied(dir.status())) {
      refused(dir.status());
    } else {
      entry.problems.push_back(absl::StrCat(dir.status().message(), ", skipped"));  // names it
    }
    return entry;
  }
  absl::StatusOr<DeviceReport> device = ReadDevice(*dir, entry.problems);
  if (!device.ok()) {
    const absl::Status& s = device.status();
    if (absl::IsPermissionDenied(s) || absl::IsFailedPrecondition(s)) {
      refused(s);
    } else {
      entry.problems.push_back(absl::StrCat(root_, "/", name, ": skipped, ", s.message()));
    }
    return entry;
  }
  device->info.id = name;
  entry.report = *std::move(device);
  return entry;
}

absl::Status DevicedirCollector::RootFailed(const absl::Status& status) {
  if (!root_error_logged_) {
    Log().warn("devicedir: cannot use path={} error=\"{}\"", root_, status.message());
    root_error_logged_ = true;
  }
  cache_.clear();
  root_problems_.clear();
  return absl::Status(absl::IsPermissionDenied(status) ? absl::StatusCode::kPermissionDenied
                                                       : absl::StatusCode::kUnavailable,
                      absl::StrCat("devicedir ", status.message()));
}

absl::Status DevicedirCollector::FullPass(const CheckedDir& root) {
  absl::StatusOr<std::vector<std::string>> names = root.Names();
  if (!names.ok()) return RootFailed(names.status());
  root_problems_.clear();
  std::vector<std::string> device_dirs;
  for (const std::string& name : *names) {
    // Hidden entries are work in progress (a directory built aside, then renamed into place).
    if (name.empty() || name[0] == '.') continue;
    if (!IsValidDeviceId(name)) {
      root_problems_.push_back(absl::StrCat(root_, "/", QuoteForLog(name),
                                            ": skipped, a device ID is 1 to 63 of letters, "
                                            "digits, '.', '_' and '-'"));
      continue;
    }
    device_dirs.push_back(name);
  }
  // Watched before they are read: a write from now on is seen by the next pass.
  SyncWatches(device_dirs);
  std::map<std::string, Entry> next;
  for (const std::string& name : device_dirs) next.emplace(name, ReadEntry(root, name));
  cache_ = std::move(next);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<DeviceReport>> DevicedirCollector::Collect() {
  ReadEvents();  // what happened since the last DrainWatch
  const absl::Time now = absl::Now();
  directories_read_ = 0;
  // The root is checked on every pass (one open and fstat): a devicedir that became writable by
  // others is refused at once, whatever the watches say.
  absl::StatusOr<CheckedDir> root = CheckedDir::Open(root_, owner_);
  if (!root.ok()) {
    parse_errors_ = 0;
    changed_.clear();
    return RootFailed(root.status());
  }
  // Without a watch on the root and on every device directory, or after the watch lost events,
  // only a full pass sees every change. Otherwise a pass reads only the devices written since
  // the last one, and everything once every full_rescan_ as well (a file changed in a way inotify
  // does not report: a bind mount from a filesystem without it, say).
  const bool incremental = inotify_fd_ >= 0 && root_wd_ >= 0 && watches_complete_ &&
                           !rescan_due_ && !cache_.empty() && now - last_full_pass_ < full_rescan_;
  if (incremental) {
    for (const std::string& name : changed_) {
      std::error_code ec;
      if (std::filesystem::exists(absl::StrCat(root_, "/", name), ec)) {
        cache_[name] = ReadEntry(*root, name);
      } else {
        cache_.erase(name);
      }
    }
  } else {
    rescan_due_ = false;
    last_full_pass_ = now;
    if (absl::Status listed = FullPass(*root); !listed.ok()) {
      parse_errors_ = 0;
      changed_.clear();
      return listed;
    }
  }
  changed_.clear();
  if (root_error_logged_) {
    Log().info("devicedir: path={} usable again", root_);
    root_error_logged_ = false;
  }

  std::vector<DeviceReport> devices;
  devices.reserve(cache_.size());
  uint64_t problems = 0;
  // Log each problem once while it lasts, not on every pass.
  const auto warn = [&](const ParseErrors& list) {
    for (const std::string& problem : list) problems_.Warn(problem, problem);
    problems += list.size();
  };
  warn(root_problems_);
  for (const auto& [name, entry] : cache_) {
    warn(entry.problems);
    if (entry.report.has_value()) devices.push_back(*entry.report);
  }
  problems_.ForgetAbsent();
  parse_errors_ = problems;
  return devices;
}

void DevicedirCollector::SyncWatches(const std::vector<std::string>& device_dirs) {
  if (inotify_fd_ < 0) return;
  if (root_wd_ < 0) {
    root_wd_ = ::inotify_add_watch(inotify_fd_, root_.c_str(),
                                   IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB |
                                       IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR);
  }
  // IN_ATTRIB: a chmod or chown can make a file untrusted (collectors/devicedir_trust.h).
  // inotify_add_watch on a watched directory returns its existing descriptor, so a renamed
  // directory keeps its descriptor; compare descriptors, not names, before removing any.
  constexpr uint32_t kDeviceMask =
      IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB | IN_ONLYDIR;
  std::map<int, std::string> next;
  watches_complete_ = true;
  for (const std::string& name : device_dirs) {
    const std::string dir = absl::StrCat(root_, "/", name);
    const int wd = ::inotify_add_watch(inotify_fd_, dir.c_str(), kDeviceMask);
    if (wd < 0) {
      // Out of watches (fs.inotify.max_user_watches), say: full passes see that device.
      watches_complete_ = false;
      continue;
    }
    next[wd] = name;
  }
  for (const auto& [wd, name] : dir_wds_) {
    if (next.count(wd) == 0) ::inotify_rm_watch(inotify_fd_, wd);
  }
  dir_wds_ = std::move(next);
}

bool DevicedirCollector::ReadEvents() {
  if (inotify_fd_ < 0) return false;
  bool resync = false;
  bool due = false;
  alignas(struct inotify_event) char buffer[16384];
  while (true) {
    const ssize_t n = ::read(inotify_fd_, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (ssize_t off = 0; off < n;) {
      const auto* event = reinterpret_cast<const struct inotify_event*>(buffer + off);
      off += static_cast<ssize_t>(sizeof(struct inotify_event) + event->len);
      const absl::string_view name = event->len > 0 ? event->name : "";
      if (event->mask & IN_Q_OVERFLOW) {
        resync = due = true;
      } else if (event->wd == root_wd_) {
        // Hidden entries are work in progress; their rename into place is an event of its own.
        if (!name.empty() && name[0] == '.') continue;
        resync = due = true;
        if (event->mask & IN_IGNORED) root_wd_ = -1;  // the root itself went away
      } else if (event->mask & IN_IGNORED) {
        dir_wds_.erase(event->wd);  // its directory went away (the root saw it too)
        due = true;
      } else if (auto it = dir_wds_.find(event->wd); it != dir_wds_.end()) {
        // In a device directory only the layout's files matter: writers that build a file aside
        // (health.tmp, then a rename) would otherwise cost a pass for the temporary file and
        // delay the one that matters by the runner's minimum gap between event passes.
        if (!name.empty() && !IsLayoutFile(name)) continue;
        changed_.insert(it->second);
        due = true;
      }
    }
  }
  if (resync) {
    // A device directory came or went: watch the new ones at once (a write into a new one must
    // wake the runner), and read everything on the next pass.
    rescan_due_ = true;
    std::vector<std::string> dirs;
    for (const std::string& entry : ListDirectory(root_)) {
      if (!entry.empty() && entry[0] != '.' && IsValidDeviceId(entry)) dirs.push_back(entry);
    }
    SyncWatches(dirs);
  }
  return due;
}

bool DevicedirCollector::DrainWatch() { return ReadEvents(); }

void DeclareOptions(OptionDeclarer& d, DevicedirOptions& o) {
  d.Flag("path", o.path, "Enable the devicedir collector on this directory")
      .Group("Collectors")
      .MustBeDirectory();
  d.FlagAndKey("owner", "owner", ValueOf(o.owner),
               "Who may own the devicedir and its files besides root: root (only root), a user "
               "name or a numeric uid")
      .Group("Collectors")
      .Check([&o] { return ResolveOwner(o.owner).status(); });
  d.Key("mount_prefixes", o.mount_prefixes,
        "When not empty, the host paths an allocate file may mount: these directories and what "
        "is below them")
      .Check([&o]() -> absl::Status {
        for (const std::string& prefix : o.mount_prefixes) {
          if (!IsCanonicalPath(prefix)) {
            return absl::InvalidArgumentError(
                absl::StrCat(QuoteForLog(prefix), " is not an absolute, canonical path"));
          }
        }
        return absl::OkStatus();
      });
}

absl::StatusOr<std::unique_ptr<Collector>> NewDevicedirCollector(const DevicedirOptions& options,
                                                                 const NodeRoots& roots) {
  if (options.path.empty()) {
    return absl::NotFoundError("devicedir: --collector.devicedir.path is not set");
  }
  absl::StatusOr<uid_t> owner = ResolveOwner(options.owner);
  if (!owner.ok()) return owner.status();
  return std::unique_ptr<Collector>(
      std::make_unique<DevicedirCollector>(options.path, *owner, options.mount_prefixes));
}

}  // namespace devscope
