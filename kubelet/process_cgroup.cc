#include "kubelet/process_cgroup.h"

#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/files.h"

namespace devscope {
namespace {

bool IsContainerId(absl::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!absl::ascii_isxdigit(c)) return false;
  }
  return true;
}

// The container ID a path component names: "<id>", "crio-<id>", "cri-containerd-<id>.scope",
// "docker-<id>.scope", ...; empty when it names none.
std::string ContainerIdOf(absl::string_view component) {
  absl::ConsumeSuffix(&component, ".scope");
  for (absl::string_view prefix : {"cri-containerd-", "crio-", "docker-", "containerd-"}) {
    if (absl::ConsumePrefix(&component, prefix)) break;
  }
  return IsContainerId(component) ? absl::AsciiStrToLower(component) : std::string();
}

// The pod UID a path component names: "pod<uid>" (cgroupfs) or
// "kubepods[-<qos>]-pod<uid with _ for ->.slice" (systemd); empty when it names none.
std::string PodUidOf(absl::string_view component) {
  if (absl::ConsumeSuffix(&component, ".slice")) {
    const size_t at = component.rfind("-pod");
    if (!absl::StartsWith(component, "kubepods") || at == absl::string_view::npos) return {};
    return absl::StrReplaceAll(component.substr(at + 4), {{"_", "-"}});
  }
  if (absl::ConsumePrefix(&component, "pod") && component.size() >= 32) {
    return std::string(component);
  }
  return {};
}

// The container the cgroup path names: its deepest container component, with the pod above it.
std::optional<ProcessCgroup> FromPath(absl::string_view path) {
  const std::vector<absl::string_view> components = absl::StrSplit(path, '/', absl::SkipEmpty());
  for (size_t i = components.size(); i-- > 0;) {
    std::string id = ContainerIdOf(components[i]);
    if (id.empty()) continue;
    ProcessCgroup found{std::move(id), {}};
    if (i > 0) found.pod_uid = PodUidOf(components[i - 1]);
    return found;
  }
  return std::nullopt;
}

}  // namespace

std::optional<ProcessCgroup> ParseProcessCgroup(absl::string_view text) {
  // Lines are "hierarchy-ID:controllers:path". The unified hierarchy's ("0::") first, then v1's.
  std::vector<absl::string_view> paths;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    const std::vector<absl::string_view> fields = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (fields.size() != 3) continue;
    if (fields[0] == "0" && fields[1].empty()) {
      paths.insert(paths.begin(), fields[2]);
    } else {
      paths.push_back(fields[2]);
    }
  }
  for (absl::string_view path : paths) {
    if (auto found = FromPath(path)) return found;
  }
  return std::nullopt;
}

absl::StatusOr<std::optional<ProcessCgroup>> ReadProcessCgroup(absl::string_view procfs,
                                                               uint32_t pid) {
  absl::StatusOr<std::string> text = ReadSmallFile(absl::StrCat(procfs, "/", pid, "/cgroup"));
  if (!text.ok()) return text.status();
  return ParseProcessCgroup(*text);
}

}  // namespace devscope
