#include "collectors/devicedir_files.h"

#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/log.h"
#include "common/pci_address.h"
#include "common/resource_name.h"

namespace devscope {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t'; }
bool IsAbsolutePath(absl::string_view p) { return !p.empty() && p[0] == '/'; }

// The text after the first word of `line` (already stripped), with leading blanks removed.
absl::string_view RestAfterKeyword(absl::string_view line) {
  size_t i = 0;
  while (i < line.size() && !IsBlank(line[i])) ++i;
  while (i < line.size() && IsBlank(line[i])) ++i;
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

std::string ParseDeviceItem(const std::vector<absl::string_view>& words, AllocateSpec& spec) {
  if (words.size() < 2 || words.size() > 4) {
    return "expected: device HOST_PATH [CONTAINER_PATH [PERMS]]";
  }
  AllocateSpec::DeviceNode node;
  node.host_path = std::string(words[1]);
  node.container_path = std::string(words.size() > 2 ? words[2] : words[1]);
  node.permissions = std::string(words.size() > 3 ? words[3] : "rw");
  if (!IsAbsolutePath(node.host_path) || !IsAbsolutePath(node.container_path)) {
    return "device paths must be absolute";
  }
  if (node.permissions.find_first_not_of("rwm") != std::string::npos) {
    return absl::StrCat("device permissions ", QuoteForLog(node.permissions),
                        " are not from r, w, m");
  }
  spec.device_nodes.push_back(std::move(node));
  return "";
}

std::string ParseMountItem(const std::vector<absl::string_view>& words, AllocateSpec& spec) {
  if (words.size() < 3 || words.size() > 4 || (words.size() == 4 && words[3] != "ro")) {
    return "expected: mount HOST_PATH CONTAINER_PATH [ro]";
  }
  if (!IsAbsolutePath(words[1]) || !IsAbsolutePath(words[2])) return "mount paths must be absolute";
  spec.mounts.push_back(
      {std::string(words[1]), std::string(words[2]), /*read_only=*/words.size() == 4});
  return "";
}

// cdi VENDOR/CLASS=NAME, e.g. example.com/widget=w0.
std::string ParseCdiItem(const std::vector<absl::string_view>& words, AllocateSpec& spec) {
  const size_t slash = words.size() == 2 ? words[1].find('/') : absl::string_view::npos;
  const size_t eq = words.size() == 2 ? words[1].find('=') : absl::string_view::npos;
  if (slash == absl::string_view::npos || eq == absl::string_view::npos || slash == 0 ||
      eq < slash + 2 || eq + 1 == words[1].size()) {
    return "expected: cdi VENDOR/CLASS=NAME";
  }
  spec.cdi_devices.emplace_back(words[1]);
  return "";
}

// One non-blank, non-comment line of an allocate file. Returns the problem, empty when fine.
std::string ParseAllocateLine(absl::string_view line, AllocateSpec& spec) {
  const std::vector<absl::string_view> words =
      absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  const absl::string_view keyword = words[0];
  if (keyword == "device") return ParseDeviceItem(words, spec);
  if (keyword == "mount") return ParseMountItem(words, spec);
  if (keyword == "cdi") return ParseCdiItem(words, spec);
  if (keyword == "env" || keyword == "annotation") {
    auto kv = SplitKeyValue(RestAfterKeyword(line));
    if (!kv.has_value()) return absl::StrCat("expected: ", keyword, " KEY=VALUE");
    (keyword == "env" ? spec.envs : spec.annotations).push_back(std::move(*kv));
    return "";
  }
  return absl::StrCat("unknown item ", QuoteForLog(keyword),
                      " (expected device, env, mount, annotation or cdi)");
}

// Calls fn(line_no, line) for each line with content: stripped of surrounding whitespace, blank
// lines and # comments skipped.
template <typename Fn>
void ForEachContentLine(absl::string_view text, Fn fn) {
  int line_no = 0;
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    ++line_no;
    const absl::string_view line = absl::StripAsciiWhitespace(raw);
    if (!line.empty() && line[0] != '#') fn(line_no, line);
  }
}

}  // namespace

bool IsValidDeviceId(absl::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '_' && c != '-') return false;
  }
  return true;
}

bool IsLayoutFile(absl::string_view name) {
  return name == "resource" || name == "health" || name == "numa_node" || name == "info" ||
         name == "metrics.prom" || name == "allocate";
}

absl::StatusOr<std::string> ParseResourceFile(absl::string_view text) {
  const absl::string_view resource = absl::StripAsciiWhitespace(text);
  if (absl::Status valid = ValidateResourceName(resource); !valid.ok()) return valid;
  return std::string(resource);
}

Parsed<HealthSignal> ParseHealthFile(absl::string_view text) {
  Parsed<HealthSignal> out;
  const absl::string_view word = absl::StripAsciiWhitespace(text);
  if (word.empty() || absl::EqualsIgnoreCase(word, "healthy")) return out;
  if (absl::EqualsIgnoreCase(word, "unhealthy")) {
    out.value = {false, "health file says Unhealthy"};
    return out;
  }
  out.errors.push_back({1, "expected Healthy or Unhealthy"});
  out.value = {false, absl::StrCat("health file says ", QuoteForLog(word))};
  return out;
}

Parsed<std::optional<int64_t>> ParseNumaNodeFile(absl::string_view text) {
  Parsed<std::optional<int64_t>> out;
  int64_t node = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &node) || node < -1) {
    out.errors.push_back({1, "expected an integer NUMA node"});
  } else if (node >= 0) {
    out.value = node;
  }
  return out;
}

Parsed<InfoFile> ParseInfoFile(absl::string_view text) {
  Parsed<InfoFile> out;
  ForEachContentLine(text, [&out](int line_no, absl::string_view line) {
    const size_t eq = line.find('=');
    if (eq == absl::string_view::npos || eq == 0) {
      out.errors.push_back({line_no, "expected key=value"});
      return;
    }
    const absl::string_view key = absl::StripTrailingAsciiWhitespace(line.substr(0, eq));
    std::string value(absl::StripLeadingAsciiWhitespace(line.substr(eq + 1)));
    if (key == "vendor") {
      out.value.vendor = std::move(value);
    } else if (key == "model") {
      out.value.model = std::move(value);
    } else if (key == "serial") {
      out.value.serial = std::move(value);
    } else if (key == "pci_address") {
      out.value.pci_address = std::move(value);
    } else if (key == "uuid") {
      out.value.uuid = std::move(value);
    } else if (key == "aliases") {
      for (absl::string_view alias :
           absl::StrSplit(value, absl::ByAnyChar(", \t"), absl::SkipEmpty())) {
        out.value.aliases.emplace_back(alias);
      }
    }
  });
  return out;
}

void ApplyInfoFile(const InfoFile& file, DeviceInfo& info) {
  info.vendor = file.vendor;
  info.model = file.model;
  info.serial = file.serial;
  if (!file.pci_address.empty()) {
    info.pci_address =
        NormalizePciAddress(file.pci_address).value_or(absl::AsciiStrToLower(file.pci_address));
    info.aliases.push_back(info.pci_address);
  }
  if (!file.uuid.empty()) info.aliases.push_back(file.uuid);
  info.aliases.insert(info.aliases.end(), file.aliases.begin(), file.aliases.end());
}

Parsed<AllocateSpec> ParseAllocateFile(absl::string_view text) {
  Parsed<AllocateSpec> out;
  ForEachContentLine(text, [&out](int line_no, absl::string_view line) {
    std::string problem = ParseAllocateLine(line, out.value);
    if (!problem.empty()) out.errors.push_back({line_no, std::move(problem)});
  });
  return out;
}

}  // namespace devscope
