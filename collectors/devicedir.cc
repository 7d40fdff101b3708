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

void AddErrors(absl::string_view file, const std::vector<LineError>& errors, ParseErrors& out) {
  for (std::string& e : FormatLineErrors(file, errors)) out.push_back(std::move(e));
}

// Reads an optional file of the layout: nullopt when absent; unreadable: nullopt, and the reason
// in `errors`.
std::optional<std::string> ReadOptional(const std::string& path, ParseErrors& errors,
                                        size_t limit = 64 * 1024) {
  auto text = ReadSmallFile(path, limit);
  if (text.ok()) return *std::move(text);
  if (!absl::IsNotFound(text.status())) errors.push_back(std::string(text.status().message()));
  return std::nullopt;
}

}  // namespace

DevicedirCollector::DevicedirCollector(std::string root, absl::Duration full_rescan)
    : root_(std::move(root)), full_rescan_(full_rescan) {
  inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_fd_ < 0) {
    Log().warn("devicedir: inotify unavailable, changes are seen at the interval only error=\"{}\"",
               std::strerror(errno));
  }
}

DevicedirCollector::~DevicedirCollector() {
  if (inotify_fd_ >= 0) ::close(inotify_fd_);
}

std::optional<DeviceReport> DevicedirCollector::ReadDevice(const std::string& id,
                                                           ParseErrors& errors,
                                                           std::string& skip_reason) {
  const std::string dir = absl::StrCat(root_, "/", id);
  DeviceReport report;
  DeviceInfo& info = report.info;
  info.id = id;
  info.advertise = true;  // a devicedir device declares its own resource

  auto resource_text = ReadSmallFile(absl::StrCat(dir, "/resource"));
  if (!resource_text.ok()) {
    skip_reason = absl::IsNotFound(resource_text.status())
                      ? "no resource file"
                      : std::string(resource_text.status().message());
    return std::nullopt;
  }
  absl::StatusOr<std::string> resource = ParseResourceFile(*resource_text);
  if (!resource.ok()) {
    skip_reason = std::string(resource.status().message());
    return std::nullopt;
  }
  info.resource = *std::move(resource);

  // health: absent means Healthy; unreadable is not trusted as healthy.
  const std::string health_path = absl::StrCat(dir, "/health");
  auto health = ReadSmallFile(health_path);
  if (health.ok()) {
    Parsed<HealthSignal> parsed = ParseHealthFile(*health);
    report.health = std::move(parsed.value);
    AddErrors(health_path, parsed.errors, errors);
  } else if (!absl::IsNotFound(health.status())) {
    report.health = {false, absl::StrCat("health file unreadable: ", health.status().message())};
  }

  // numa_node: absent or unreadable, no NUMA affinity.
  const std::string numa_path = absl::StrCat(dir, "/numa_node");
  if (auto text = ReadSmallFile(numa_path); text.ok()) {
    Parsed<std::optional<int64_t>> numa = ParseNumaNodeFile(*text);
    info.numa_node = numa.value;
    AddErrors(numa_path, numa.errors, errors);
  }
  const std::string info_path = absl::StrCat(dir, "/info");
  if (auto text = ReadOptional(info_path, errors)) {
    Parsed<InfoFile> parsed = ParseInfoFile(*text);
    ApplyInfoFile(parsed.value, info);
    AddErrors(info_path, parsed.errors, errors);
  }
  const std::string metrics_path = absl::StrCat(dir, "/metrics.prom");
  if (auto text = ReadOptional(metrics_path, errors, kMetricsFileLimit)) {
    Parsed<std::vector<Sample>> parsed = ParsePrometheusText(*text);
    report.samples = std::move(parsed.value);
    report.samples.shrink_to_fit();  // kept until the file changes
    AddErrors(metrics_path, parsed.errors, errors);
  }
  const std::string allocate_path = absl::StrCat(dir, "/allocate");
  if (auto text = ReadOptional(allocate_path, errors)) {
    Parsed<AllocateSpec> parsed = ParseAllocateFile(*text);
    info.allocate = std::move(parsed.value);
    AddErrors(allocate_path, parsed.errors, errors);
  }
  return report;
}

DevicedirCollector::Entry DevicedirCollector::ReadEntry(const std::string& name) {
  ++directories_read_;
  Entry entry;
  std::string skip_reason;
  entry.report = ReadDevice(name, entry.problems, skip_reason);
  if (!entry.report.has_value()) {
    entry.problems.push_back(absl::StrCat(root_, "/", name, ": skipped, ", skip_reason));
  }
  return entry;
}

absl::Status DevicedirCollector::FullPass() {
  namespace fs = std::filesystem;
  std::error_code ec;
  const bool is_dir = fs::is_directory(root_, ec);
  std::vector<std::string> names;
  if (is_dir) {
    for (fs::directory_iterator it(root_, ec), end; !ec && it != end; it.increment(ec)) {
      names.push_back(it->path().filename().string());
    }
  }
  if (!is_dir || ec) {
    const std::string why = ec ? ec.message() : "not a directory";
    if (!root_error_logged_) {
      Log().warn("devicedir: cannot read path={} error=\"{}\"", root_, why);
      root_error_logged_ = true;
    }
    cache_.clear();
    root_problems_.clear();
    return absl::UnavailableError(absl::StrCat("devicedir ", root_, ": ", why));
  }
  if (root_error_logged_) {
    Log().info("devicedir: path={} readable again", root_);
    root_error_logged_ = false;
  }
  std::sort(names.begin(), names.end());

  root_problems_.clear();
  std::vector<std::string> device_dirs;
  for (const std::string& name : names) {
    // Hidden entries are work in progress (a directory built aside, then renamed into place).
    if (name.empty() || name[0] == '.') continue;
    const std::string dir = absl::StrCat(root_, "/", name);
    std::error_code dir_ec;
    if (!fs::is_directory(dir, dir_ec)) {
      root_problems_.push_back(absl::StrCat(dir, ": skipped, not a directory"));
      continue;
    }
    if (!IsValidDeviceId(name)) {
      root_problems_.push_back(absl::StrCat(
          dir, ": skipped, a device ID is 1 to 63 of letters, digits, '.', '_' and '-'"));
      continue;
    }
    device_dirs.push_back(name);
  }
  // Watched before they are read: a write from now on is seen by the next pass.
  SyncWatches(device_dirs);
  std::map<std::string, Entry> next;
  for (const std::string& name : device_dirs) next.emplace(name, ReadEntry(name));
  cache_ = std::move(next);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<DeviceReport>> DevicedirCollector::Collect() {
  ReadEvents();  // what happened since the last DrainWatch
  const absl::Time now = absl::Now();
  directories_read_ = 0;
  // Without a watch on the root and on every device directory, or after the watch lost events,
  // only a full pass sees every change. Otherwise a pass reads only the devices written since
  // the last one, and everything once every full_rescan_ as well (a file changed in a way inotify
  // does not report: a bind mount from a filesystem without it, say).
  const bool incremental = inotify_fd_ >= 0 && root_wd_ >= 0 && watches_complete_ && !rescan_due_ &&
                           now - last_full_pass_ < full_rescan_;
  if (incremental) {
    for (const std::string& name : changed_) {
      std::error_code ec;
      if (std::filesystem::is_directory(absl::StrCat(root_, "/", name), ec)) {
        cache_[name] = ReadEntry(name);
      } else {
        cache_.erase(name);
      }
    }
  } else {
    rescan_due_ = false;
    last_full_pass_ = now;
    if (absl::Status listed = FullPass(); !listed.ok()) {
      parse_errors_ = 0;
      changed_.clear();
      return listed;
    }
  }
  changed_.clear();

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
                                   IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO |
                                       IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR);
  }
  // inotify_add_watch on a watched directory returns its existing descriptor, so a renamed
  // directory keeps its descriptor; compare descriptors, not names, before removing any.
  constexpr uint32_t kDeviceMask =
      IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ONLYDIR;
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
}

absl::StatusOr<std::unique_ptr<Collector>> NewDevicedirCollector(const DevicedirOptions& options,
                                                                 const NodeRoots& roots) {
  if (options.path.empty()) {
    return absl::NotFoundError("devicedir: --collector.devicedir.path is not set");
  }
  return std::unique_ptr<Collector>(std::make_unique<DevicedirCollector>(options.path));
}

}  // namespace devscope
