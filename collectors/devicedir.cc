#include "collectors/devicedir.h"

#include <fcntl.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "collectors/registry.h"
#include "common/files.h"
#include "common/log.h"

namespace devscope {
namespace {

constexpr absl::string_view kSamplePrefix = "devscope_device_";
// metrics.prom may hold many series; every other file is a few lines.
constexpr size_t kMetricsFileLimit = 1 << 20;

// Labels devscope sets itself from the device and its holder.
bool IsReservedLabel(absl::string_view name) {
  return name == "device" || name == "resource" || name == "namespace" || name == "pod" ||
         name == "container";
}

bool IsMetricNameStart(char c) { return absl::ascii_isalpha(c) || c == '_' || c == ':'; }
bool IsMetricNameChar(char c) { return absl::ascii_isalnum(c) || c == '_' || c == ':'; }
bool IsLabelNameStart(char c) { return absl::ascii_isalpha(c) || c == '_'; }
bool IsLabelNameChar(char c) { return absl::ascii_isalnum(c) || c == '_'; }
bool IsBlank(char c) { return c == ' ' || c == '\t'; }

void SkipBlanks(absl::string_view s, size_t& i) {
  while (i < s.size() && IsBlank(s[i])) ++i;
}

// Reads a metric name at s[i...]; empty when there is none.
absl::string_view TakeMetricName(absl::string_view s, size_t& i) {
  const size_t start = i;
  if (i < s.size() && IsMetricNameStart(s[i])) {
    ++i;
    while (i < s.size() && IsMetricNameChar(s[i])) ++i;
  }
  return s.substr(start, i - start);
}

// A sample value: a float, NaN, +Inf, -Inf (Prometheus spells them so; case is not significant).
std::optional<double> ParseSampleValue(absl::string_view token) {
  if (absl::EqualsIgnoreCase(token, "nan")) return std::numeric_limits<double>::quiet_NaN();
  if (absl::EqualsIgnoreCase(token, "+inf") || absl::EqualsIgnoreCase(token, "inf")) {
    return std::numeric_limits<double>::infinity();
  }
  if (absl::EqualsIgnoreCase(token, "-inf")) return -std::numeric_limits<double>::infinity();
  if (token.empty()) return std::nullopt;
  for (char c : token) {
    if (!absl::ascii_isdigit(c) && c != '.' && c != 'e' && c != 'E' && c != '+' && c != '-') {
      return std::nullopt;
    }
  }
  if (token[0] == '+') token.remove_prefix(1);
  double value = 0;
  const auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), value);
  if (ec != std::errc() || end != token.data() + token.size()) return std::nullopt;
  return value;
}

// HELP text escapes: \\ and \n.
std::string UnescapeHelp(absl::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size() && (text[i + 1] == '\\' || text[i + 1] == 'n')) {
      out.push_back(text[i + 1] == 'n' ? '\n' : '\\');
      ++i;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

// Parses `{name="value",...}` starting at s[i] == '{'. Returns an error message, empty when fine.
std::string ParseLabels(absl::string_view s, size_t& i, LabelPairs& labels) {
  ++i;  // '{'
  while (true) {
    SkipBlanks(s, i);
    if (i >= s.size()) return "unterminated label set";
    if (s[i] == '}') {
      ++i;
      return "";
    }
    const size_t name_start = i;
    if (!IsLabelNameStart(s[i])) return absl::StrCat("bad label name at column ", i + 1);
    while (i < s.size() && IsLabelNameChar(s[i])) ++i;
    const absl::string_view name = s.substr(name_start, i - name_start);
    if (absl::StartsWith(name, "__")) return absl::StrCat("label name ", name, " is reserved");
    if (IsReservedLabel(name)) {
      return absl::StrCat("label ", name, " is set by devscope and may not be given");
    }
    for (const auto& [existing, unused] : labels) {
      if (existing == name) return absl::StrCat("label ", name, " given twice");
    }
    SkipBlanks(s, i);
    if (i >= s.size() || s[i] != '=') return absl::StrCat("expected = after label ", name);
    ++i;
    SkipBlanks(s, i);
    if (i >= s.size() || s[i] != '"') return absl::StrCat("expected \" after ", name, "=");
    ++i;
    std::string value;
    bool closed = false;
    while (i < s.size()) {
      const char c = s[i++];
      if (c == '"') {
        closed = true;
        break;
      }
      if (c != '\\') {
        value.push_back(c);
        continue;
      }
      if (i >= s.size()) break;
      const char e = s[i++];
      if (e == '\\') {
        value.push_back('\\');
      } else if (e == '"') {
        value.push_back('"');
      } else if (e == 'n') {
        value.push_back('\n');
      } else {
        return absl::StrCat("bad escape \\", std::string(1, e), " in label ", name);
      }
    }
    if (!closed) return absl::StrCat("unterminated value of label ", name);
    labels.emplace_back(std::string(name), std::move(value));
    SkipBlanks(s, i);
    if (i < s.size() && s[i] == ',') {
      ++i;
      continue;
    }
    if (i < s.size() && s[i] == '}') {
      ++i;
      return "";
    }
    return absl::StrCat("expected , or } after label ", name);
  }
}

// Identity of a series for duplicate detection: name and labels in sorted order.
std::string SeriesKey(const Sample& sample) {
  LabelPairs sorted = sample.labels;
  std::sort(sorted.begin(), sorted.end());
  std::string key = sample.name;
  for (const auto& [k, v] : sorted) absl::StrAppend(&key, "\x1f", k, "\x1e", v);
  return key;
}

bool IsAbsolutePath(absl::string_view p) { return !p.empty() && p[0] == '/'; }

// The text after the first word of `line` (already stripped), with leading blanks removed.
absl::string_view RestAfterKeyword(absl::string_view line) {
  size_t i = 0;
  while (i < line.size() && !IsBlank(line[i])) ++i;
  SkipBlanks(line, i);
  return line.substr(i);
}

// KEY=VALUE with a non-empty KEY without blanks; nullopt otherwise.
std::optional<std::pair<std::string, std::string>> SplitKeyValue(absl::string_view text) {
  const size_t eq = text.find('=');
  if (eq == absl::string_view::npos || eq == 0) return std::nullopt;
  const absl::string_view key = text.substr(0, eq);
  for (char c : key) {
    if (IsBlank(c)) return std::nullopt;
  }
  return std::make_pair(std::string(key), std::string(text.substr(eq + 1)));
}

}  // namespace

namespace {

// The files of the devicedir layout (interface.md); anything else in a device directory is ignored.
bool IsLayoutFile(absl::string_view name) {
  return name == "resource" || name == "health" || name == "numa_node" || name == "info" ||
         name == "metrics.prom" || name == "allocate";
}

}  // namespace

bool IsValidDeviceId(absl::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '_' && c != '-') return false;
  }
  return true;
}

std::vector<Sample> ParsePromText(absl::string_view text, absl::string_view file,
                                  ParseErrors& errors) {
  std::vector<Sample> samples;
  std::map<std::string, Sample::Kind, std::less<>> types;
  std::map<std::string, std::string, std::less<>> helps;
  std::set<std::string, std::less<>> names_with_samples;
  std::set<std::string> series;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    auto fail = [&](absl::string_view problem) {
      errors.push_back(absl::StrCat(file, ":", line_no, ": ", problem));
    };
    absl::ConsumeSuffix(&line, "\r");
    size_t i = 0;
    SkipBlanks(line, i);
    if (i == line.size()) continue;
    if (line[i] == '#') {
      ++i;
      SkipBlanks(line, i);
      const size_t word_start = i;
      while (i < line.size() && !IsBlank(line[i])) ++i;
      const absl::string_view word = line.substr(word_start, i - word_start);
      if (word != "HELP" && word != "TYPE") continue;  // a plain comment
      SkipBlanks(line, i);
      const absl::string_view name = TakeMetricName(line, i);
      if (name.empty()) {
        fail(absl::StrCat("# ", word, " without a metric name"));
        continue;
      }
      if (!absl::StartsWith(name, kSamplePrefix)) {
        fail(absl::StrCat("metric ", name, " does not start with ", kSamplePrefix));
        continue;
      }
      if (i < line.size() && !IsBlank(line[i])) {
        fail(absl::StrCat("bad metric name in # ", word));
        continue;
      }
      SkipBlanks(line, i);
      const absl::string_view rest = line.substr(i);
      if (word == "HELP") {
        if (helps.count(name) > 0) {
          fail(absl::StrCat("second # HELP for ", name));
          continue;
        }
        helps.emplace(std::string(name), UnescapeHelp(rest));
        continue;
      }
      const absl::string_view type = absl::StripTrailingAsciiWhitespace(rest);
      if (types.count(name) > 0) {
        fail(absl::StrCat("second # TYPE for ", name));
      } else if (names_with_samples.count(name) > 0) {
        fail(absl::StrCat("# TYPE for ", name, " after its samples"));
      } else if (type == "gauge") {
        types.emplace(std::string(name), Sample::Kind::kGauge);
      } else if (type == "counter") {
        types.emplace(std::string(name), Sample::Kind::kCounter);
      } else {
        fail(absl::StrCat("type \"", type, "\" of ", name, " is not gauge or counter"));
      }
      continue;
    }

    Sample sample;
    const absl::string_view name = TakeMetricName(line, i);
    if (name.empty()) {
      fail("expected a metric name");
      continue;
    }
    if (!absl::StartsWith(name, kSamplePrefix)) {
      fail(absl::StrCat("metric ", name, " does not start with ", kSamplePrefix));
      continue;
    }
    sample.name = std::string(name);
    SkipBlanks(line, i);
    if (i < line.size() && line[i] == '{') {
      const std::string problem = ParseLabels(line, i, sample.labels);
      if (!problem.empty()) {
        fail(problem);
        continue;
      }
    }
    SkipBlanks(line, i);
    const size_t value_start = i;
    while (i < line.size() && !IsBlank(line[i])) ++i;
    const absl::string_view value_text = line.substr(value_start, i - value_start);
    if (value_text.empty()) {
      fail(absl::StrCat("missing value for ", name));
      continue;
    }
    const std::optional<double> value = ParseSampleValue(value_text);
    if (!value.has_value()) {
      fail(absl::StrCat("bad value \"", value_text, "\" for ", name));
      continue;
    }
    SkipBlanks(line, i);
    if (i < line.size()) {
      fail(absl::StrCat("unexpected \"", line.substr(i), "\" after the value of ", name,
                        " (timestamps are not supported)"));
      continue;
    }
    sample.value = *value;
    const auto type = types.find(name);
    sample.kind = type == types.end() ? Sample::Kind::kGauge : type->second;
    if (sample.kind == Sample::Kind::kCounter && sample.value < 0) {
      fail(absl::StrCat("counter ", name, " is negative"));
      continue;
    }
    if (!series.insert(SeriesKey(sample)).second) {
      fail(absl::StrCat("duplicate series of ", name));
      continue;
    }
    names_with_samples.insert(sample.name);
    samples.push_back(std::move(sample));
  }
  for (Sample& sample : samples) {
    const auto help = helps.find(sample.name);
    if (help != helps.end()) sample.help = help->second;
  }
  return samples;
}

AllocateSpec ParseAllocateFile(absl::string_view text, absl::string_view file,
                               ParseErrors& errors) {
  AllocateSpec spec;
  int line_no = 0;
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    ++line_no;
    auto fail = [&](absl::string_view problem) {
      errors.push_back(absl::StrCat(file, ":", line_no, ": ", problem));
    };
    const absl::string_view line = absl::StripAsciiWhitespace(raw);
    if (line.empty() || line[0] == '#') continue;
    const std::vector<absl::string_view> words =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    const absl::string_view keyword = words[0];
    if (keyword == "device") {
      if (words.size() < 2 || words.size() > 4) {
        fail("expected: device HOST_PATH [CONTAINER_PATH [PERMS]]");
        continue;
      }
      AllocateSpec::DeviceNode node;
      node.host_path = std::string(words[1]);
      node.container_path = std::string(words.size() > 2 ? words[2] : words[1]);
      node.permissions = std::string(words.size() > 3 ? words[3] : "rw");
      if (!IsAbsolutePath(node.host_path) || !IsAbsolutePath(node.container_path)) {
        fail("device paths must be absolute");
        continue;
      }
      if (node.permissions.find_first_not_of("rwm") != std::string::npos) {
        fail(absl::StrCat("device permissions \"", node.permissions, "\" are not from r, w, m"));
        continue;
      }
      spec.device_nodes.push_back(std::move(node));
    } else if (keyword == "env" || keyword == "annotation") {
      auto kv = SplitKeyValue(RestAfterKeyword(line));
      if (!kv.has_value()) {
        fail(absl::StrCat("expected: ", keyword, " KEY=VALUE"));
        continue;
      }
      (keyword == "env" ? spec.envs : spec.annotations).push_back(std::move(*kv));
    } else if (keyword == "mount") {
      if (words.size() < 3 || words.size() > 4 || (words.size() == 4 && words[3] != "ro")) {
        fail("expected: mount HOST_PATH CONTAINER_PATH [ro]");
        continue;
      }
      if (!IsAbsolutePath(words[1]) || !IsAbsolutePath(words[2])) {
        fail("mount paths must be absolute");
        continue;
      }
      spec.mounts.push_back(
          {std::string(words[1]), std::string(words[2]), /*read_only=*/words.size() == 4});
    } else if (keyword == "cdi") {
      // vendor/class=name, e.g. example.com/widget=w0.
      const size_t slash = words.size() == 2 ? words[1].find('/') : absl::string_view::npos;
      const size_t eq = words.size() == 2 ? words[1].find('=') : absl::string_view::npos;
      if (slash == absl::string_view::npos || eq == absl::string_view::npos || slash == 0 ||
          eq < slash + 2 || eq + 1 == words[1].size()) {
        fail("expected: cdi VENDOR/CLASS=NAME");
        continue;
      }
      spec.cdi_devices.emplace_back(words[1]);
    } else {
      fail(absl::StrCat("unknown item \"", keyword,
                        "\" (expected device, env, mount, annotation or cdi)"));
    }
  }
  return spec;
}

void ParseInfoFile(absl::string_view text, absl::string_view file, DeviceInfo& info,
                   ParseErrors& errors) {
  int line_no = 0;
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    ++line_no;
    const absl::string_view line = absl::StripAsciiWhitespace(raw);
    if (line.empty() || line[0] == '#') continue;
    const size_t eq = line.find('=');
    if (eq == absl::string_view::npos || eq == 0) {
      errors.push_back(absl::StrCat(file, ":", line_no, ": expected key=value"));
      continue;
    }
    const absl::string_view key = absl::StripTrailingAsciiWhitespace(line.substr(0, eq));
    const std::string value(absl::StripLeadingAsciiWhitespace(line.substr(eq + 1)));
    if (key == "vendor") {
      info.vendor = value;
    } else if (key == "model") {
      info.model = value;
    } else if (key == "serial") {
      info.serial = value;
    } else if (key == "pci_address") {
      info.pci_address = absl::AsciiStrToLower(value);
      if (!value.empty()) info.aliases.push_back(info.pci_address);
    } else if (key == "uuid") {
      if (!value.empty()) info.aliases.push_back(value);
    }
  }
}

DevicedirCollector::DevicedirCollector(std::string root) : root_(std::move(root)) {
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

  const std::string resource_path = absl::StrCat(dir, "/resource");
  auto resource = ReadSmallFile(resource_path);
  if (!resource.ok()) {
    skip_reason = absl::IsNotFound(resource.status()) ? "no resource file"
                                                      : std::string(resource.status().message());
    return std::nullopt;
  }
  info.resource = std::string(absl::StripAsciiWhitespace(*resource));
  const size_t slash = info.resource.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == info.resource.size() ||
      info.resource.find_first_of(" \t\n/", slash + 1) != std::string::npos ||
      info.resource.find_first_of(" \t\n") != std::string::npos) {
    skip_reason = absl::StrCat("resource \"", info.resource,
                               "\" is not an extended resource name (domain/name)");
    return std::nullopt;
  }

  // health: Healthy or Unhealthy; absent (or empty, as while being rewritten) means Healthy.
  const std::string health_path = absl::StrCat(dir, "/health");
  auto health = ReadSmallFile(health_path);
  if (health.ok()) {
    const absl::string_view word = absl::StripAsciiWhitespace(*health);
    if (word.empty() || absl::EqualsIgnoreCase(word, "healthy")) {
      report.health.healthy = true;
    } else if (absl::EqualsIgnoreCase(word, "unhealthy")) {
      report.health = {false, "health file says Unhealthy"};
    } else {
      // Unknown content is not trusted as healthy.
      errors.push_back(absl::StrCat(health_path, ":1: expected Healthy or Unhealthy"));
      report.health = {false, absl::StrCat("health file says \"", word, "\"")};
    }
  } else if (!absl::IsNotFound(health.status())) {
    report.health = {false, absl::StrCat("health file unreadable: ", health.status().message())};
  }

  const std::string numa_path = absl::StrCat(dir, "/numa_node");
  auto numa = ReadSmallFile(numa_path);
  if (numa.ok()) {
    int64_t node = 0;
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(*numa), &node) && node >= -1) {
      if (node >= 0) info.numa_node = node;  // -1: no NUMA affinity, as in sysfs
    } else {
      errors.push_back(absl::StrCat(numa_path, ":1: expected an integer NUMA node"));
    }
  }

  const std::string info_path = absl::StrCat(dir, "/info");
  auto info_text = ReadSmallFile(info_path);
  if (info_text.ok()) {
    ParseInfoFile(*info_text, info_path, info, errors);
  } else if (!absl::IsNotFound(info_text.status())) {
    errors.push_back(std::string(info_text.status().message()));
  }

  const std::string metrics_path = absl::StrCat(dir, "/metrics.prom");
  auto metrics = ReadSmallFile(metrics_path, kMetricsFileLimit);
  if (metrics.ok()) {
    report.samples = ParsePromText(*metrics, metrics_path, errors);
  } else if (!absl::IsNotFound(metrics.status())) {
    errors.push_back(std::string(metrics.status().message()));
  }

  const std::string allocate_path = absl::StrCat(dir, "/allocate");
  auto allocate = ReadSmallFile(allocate_path);
  if (allocate.ok()) {
    info.allocate = ParseAllocateFile(*allocate, allocate_path, errors);
  } else if (!absl::IsNotFound(allocate.status())) {
    errors.push_back(std::string(allocate.status().message()));
  }
  return report;
}

absl::StatusOr<std::vector<DeviceReport>> DevicedirCollector::Collect() {
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
    parse_errors_ = 0;
    return absl::UnavailableError(absl::StrCat("devicedir ", root_, ": ", why));
  }
  if (root_error_logged_) {
    Log().info("devicedir: path={} readable again", root_);
    root_error_logged_ = false;
  }
  std::sort(names.begin(), names.end());

  std::vector<DeviceReport> devices;
  std::vector<std::string> device_dirs;
  ParseErrors problems;
  for (const std::string& name : names) {
    // Hidden entries are work in progress (a directory built aside, then renamed into place).
    if (name.empty() || name[0] == '.') continue;
    const std::string dir = absl::StrCat(root_, "/", name);
    std::error_code dir_ec;
    if (!fs::is_directory(dir, dir_ec)) {
      problems.push_back(absl::StrCat(dir, ": skipped, not a directory"));
      continue;
    }
    if (!IsValidDeviceId(name)) {
      problems.push_back(absl::StrCat(
          dir, ": skipped, a device ID is 1 to 63 of letters, digits, '.', '_' and '-'"));
      continue;
    }
    device_dirs.push_back(name);
    std::string skip_reason;
    std::optional<DeviceReport> device = ReadDevice(name, problems, skip_reason);
    if (!device.has_value()) {
      problems.push_back(absl::StrCat(dir, ": skipped, ", skip_reason));
      continue;
    }
    devices.push_back(std::move(*device));
  }
  SyncWatches(device_dirs);

  // Log each problem once while it lasts, not on every pass.
  std::set<std::string> current(problems.begin(), problems.end());
  for (const std::string& problem : current) {
    if (logged_problems_.count(problem) == 0) Log().warn("devicedir: {}", problem);
  }
  logged_problems_ = std::move(current);
  parse_errors_ = problems.size();
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
  std::map<std::string, int> next;
  std::set<int> live;
  for (const std::string& name : device_dirs) {
    const std::string dir = absl::StrCat(root_, "/", name);
    const int wd = ::inotify_add_watch(inotify_fd_, dir.c_str(), kDeviceMask);
    if (wd < 0) continue;
    next[name] = wd;
    live.insert(wd);
  }
  for (const auto& [name, wd] : dir_wds_) {
    if (live.count(wd) == 0) ::inotify_rm_watch(inotify_fd_, wd);
  }
  dir_wds_ = std::move(next);
}

bool DevicedirCollector::DrainWatch() {
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
      if (event->mask & IN_Q_OVERFLOW) resync = true;
      // In a device directory only the layout's files matter: writers that build a file aside
      // (health.tmp, then a rename) would otherwise cost a pass for the temporary file and delay
      // the one that matters by the runner's minimum gap between event passes.
      if (event->wd != root_wd_ && event->len > 0 && !IsLayoutFile(event->name)) continue;
      due = true;
      if (event->wd == root_wd_) {
        resync = true;
        if (event->mask & IN_IGNORED) root_wd_ = -1;  // the root itself went away
      } else if (event->mask & IN_IGNORED) {
        for (auto it = dir_wds_.begin(); it != dir_wds_.end(); ++it) {
          if (it->second == event->wd) {
            dir_wds_.erase(it);
            break;
          }
        }
      }
    }
  }
  if (!resync) return due;
  std::vector<std::string> dirs;
  for (const std::string& name : ListDirectory(root_)) {
    if (!name.empty() && name[0] != '.' && IsValidDeviceId(name)) dirs.push_back(name);
  }
  SyncWatches(dirs);
  return true;
}

absl::StatusOr<std::unique_ptr<Collector>> NewDevicedirCollector(const Config& config) {
  if (config.devicedir_path.empty()) {
    return absl::NotFoundError("devicedir: --collector.devicedir.path is not set");
  }
  return std::unique_ptr<Collector>(std::make_unique<DevicedirCollector>(config.devicedir_path));
}

}  // namespace devscope
