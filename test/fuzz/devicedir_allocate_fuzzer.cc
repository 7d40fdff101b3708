// devicedir's `allocate` file: whatever is kept is what the layout allows (absolute paths,
// permissions from r, w and m, CDI names with a kind and a name).
#include "absl/strings/match.h"
#include "collectors/devicedir_files.h"
#include "test/fuzz/fuzz_support.h"

namespace {
constexpr char kTarget[] = "devicedir_allocate_fuzzer";
bool Absolute(const std::string& p) { return !p.empty() && p[0] == '/'; }
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace devscope;
  const absl::string_view text = AsText(data, size);
  const Parsed<AllocateSpec> parsed = ParseAllocateFile(text);
  CheckLineErrors(kTarget, text, parsed.errors);
  for (const AllocateSpec::DeviceNode& node : parsed.value.device_nodes) {
    if (!Absolute(node.host_path) || !Absolute(node.container_path)) {
      FuzzFail(kTarget, "kept a relative device path");
    }
    if (node.permissions.find_first_not_of("rwm") != std::string::npos) {
      FuzzFail(kTarget, "kept bad permissions");
    }
  }
  for (const AllocateSpec::Mount& mount : parsed.value.mounts) {
    if (!Absolute(mount.host_path) || !Absolute(mount.container_path)) {
      FuzzFail(kTarget, "kept a relative mount path");
    }
  }
  for (const std::string& cdi : parsed.value.cdi_devices) {
    if (cdi.find('/') == std::string::npos || cdi.find('=') == std::string::npos) {
      FuzzFail(kTarget, "kept a bad CDI name");
    }
  }
  for (const auto& [key, value] : parsed.value.envs) {
    if (key.empty() || key.find_first_of(" \t=") != std::string::npos) {
      FuzzFail(kTarget, "kept a bad env key");
    }
  }
  return 0;
}
