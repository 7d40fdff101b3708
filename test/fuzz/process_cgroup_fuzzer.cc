// /proc/PID/cgroup (kubelet/process_cgroup.h): the text is the kernel's, but its paths are named
// by whoever made the cgroups (a container runtime, systemd, or a process of the node that may
// create cgroups), so nothing about them is trusted. A container found is a CRI container ID:
// 64 lowercase hex digits that the text spells (in any case) as a whole path component, less a
// runtime's prefix and ".scope"; a pod UID is part of one path component. Reading the file as the
// attributor does gives what parsing its text gives.
#include <sys/stat.h>

#include <optional>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "kubelet/process_cgroup.h"
#include "test/fuzz/fuzz_support.h"

namespace devscope {
namespace {

constexpr char kTarget[] = "process_cgroup_fuzzer";
constexpr uint32_t kPid = 4242;

// <scratch>/4242/cgroup, as <procfs>/<pid>/cgroup.
const ScratchFile& ProcFile() {
  static const ScratchFile file(absl::StrCat(kPid, "/cgroup"));
  static const bool made = ::mkdir(absl::StrCat(file.dir(), "/", kPid).c_str(), 0700) == 0;
  if (!made) FuzzFail(kTarget, "cannot make the scratch procfs");
  return file;
}

void CheckFound(absl::string_view text, const ProcessCgroup& found) {
  if (found.container_id.size() != 64) FuzzFail(kTarget, "container ID of another length");
  for (char c : found.container_id) {
    if (!absl::ascii_isdigit(c) && !(c >= 'a' && c <= 'f')) {
      FuzzFail(kTarget, "container ID not lowercase hex: " + found.container_id);
    }
  }
  if (!absl::StrContains(absl::AsciiStrToLower(text), found.container_id)) {
    FuzzFail(kTarget, "container ID not in the text: " + found.container_id);
  }
  if (absl::StrContains(found.pod_uid, '/') || absl::StrContains(found.pod_uid, '\n')) {
    FuzzFail(kTarget, "pod UID spans components: " + found.pod_uid);
  }
}

bool Same(const std::optional<ProcessCgroup>& a, const std::optional<ProcessCgroup>& b) {
  if (a.has_value() != b.has_value()) return false;
  return !a.has_value() || (a->container_id == b->container_id && a->pod_uid == b->pod_uid);
}

}  // namespace
}  // namespace devscope

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  devscope::QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace devscope;
  const absl::string_view text = AsText(data, size);
  const std::optional<ProcessCgroup> parsed = ParseProcessCgroup(text);
  if (parsed.has_value()) CheckFound(text, *parsed);
  const ScratchFile& file = ProcFile();
  file.Write(text);
  const absl::StatusOr<std::optional<ProcessCgroup>> read = ReadProcessCgroup(file.dir(), kPid);
  if (!read.ok()) {
    // Only a file larger than the reader takes may fail to read.
    if (size <= 64 * 1024) FuzzFail(kTarget, "read failed: " + read.status().ToString());
    return 0;
  }
  if (!Same(*read, parsed)) FuzzFail(kTarget, "reading the file differs from parsing its text");
  return 0;
}
