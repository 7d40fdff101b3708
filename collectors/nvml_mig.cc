#include "collectors/nvml_mig.h"

#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/files.h"

namespace devscope {

std::vector<nvmlDevice_t> ListMigDevices(NvmlCaller& nvml, nvmlDevice_t device,
                                         const std::string& uuid, bool& lost) {
  const NvmlApi& api = nvml.api();
  std::vector<nvmlDevice_t> migs;
  if (api.GetMigMode == nullptr || api.GetMaxMigDeviceCount == nullptr ||
      api.GetMigDeviceHandleByIndex == nullptr) {
    return migs;
  }
  unsigned int current = 0, pending = 0;
  unsigned int max = 0;
  if (!nvml.Check(api.GetMigMode(device, &current, &pending), uuid, "nvmlDeviceGetMigMode", lost) ||
      current != NVML_DEVICE_MIG_ENABLE ||
      !nvml.Check(api.GetMaxMigDeviceCount(device, &max), uuid, "nvmlDeviceGetMaxMigDeviceCount",
                  lost)) {
    return migs;
  }
  for (unsigned int i = 0; i < max; ++i) {
    nvmlDevice_t mig = nullptr;
    // NOT_FOUND: no MIG device in that slot.
    if (api.GetMigDeviceHandleByIndex(device, i, &mig) == NVML_SUCCESS) migs.push_back(mig);
  }
  return migs;
}

MigInstance GetMigInstance(NvmlCaller& nvml, nvmlDevice_t mig, const std::string& mig_uuid,
                           bool& lost) {
  const NvmlApi& api = nvml.api();
  MigInstance instance;
  if (api.GetGpuInstanceId != nullptr) {
    nvml.Check(api.GetGpuInstanceId(mig, &instance.gpu_instance), mig_uuid,
               "nvmlDeviceGetGpuInstanceId", lost);
  }
  if (api.GetComputeInstanceId != nullptr) {
    nvml.Check(api.GetComputeInstanceId(mig, &instance.compute_instance), mig_uuid,
               "nvmlDeviceGetComputeInstanceId", lost);
  }
  return instance;
}

std::map<std::string, unsigned int> ParseMigMinors(absl::string_view text) {
  std::map<std::string, unsigned int> minors;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    unsigned int minor = 0;
    if (fields.size() == 2 && absl::SimpleAtoi(fields[1], &minor)) {
      minors[std::string(fields[0])] = minor;
    }
  }
  return minors;
}

const std::map<std::string, unsigned int>& MigMinorsTable::Get(WarnOnce& warn) {
  if (!minors_.empty()) return minors_;
  auto text = ReadSmallFile(file_, 1 << 20);
  if (!text.ok()) {
    warn.Warn("mig-minors", absl::StrCat("cannot read ", file_, " (", text.status().message(),
                                         "): MIG devices get no capability nodes"));
    return minors_;
  }
  minors_ = ParseMigMinors(*text);
  return minors_;
}

std::vector<std::string> MigCapabilityNodes(const std::map<std::string, unsigned int>& minors,
                                            const std::string& minors_file, const NodeRoots& roots,
                                            unsigned int gpu_minor, const MigInstance& instance,
                                            const std::string& mig_uuid, WarnOnce& warn) {
  std::vector<std::string> nodes;
  if (instance.gpu_instance == NVML_INVALID_INSTANCE_ID ||
      instance.compute_instance == NVML_INVALID_INSTANCE_ID) {
    return nodes;
  }
  const std::string gi = absl::StrCat("gpu", gpu_minor, "/gi", instance.gpu_instance);
  for (const std::string& cap : {absl::StrCat(gi, "/access"),
                                 absl::StrCat(gi, "/ci", instance.compute_instance, "/access")}) {
    auto cap_minor = minors.find(cap);
    if (cap_minor == minors.end()) {
      warn.Warn(absl::StrCat("mig-minor/", cap),
                absl::StrCat("device=", mig_uuid, " ", minors_file, " lists no ", cap,
                             ": its MIG capability node is not handed out"));
      continue;
    }
    const std::string node = absl::StrCat("nvidia-caps/nvidia-cap", cap_minor->second);
    std::error_code ec;
    if (!std::filesystem::exists(roots.DevfsPath(absl::StrCat("/dev/", node)), ec)) {
      warn.Warn(absl::StrCat("mig-node/", node),
                absl::StrCat("device=", mig_uuid, " /dev/", node,
                             " does not exist: its MIG capability node is not handed out"));
      continue;
    }
    nodes.push_back(node);
  }
  return nodes;
}

}  // namespace devscope
