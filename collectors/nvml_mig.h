// MIG (Multi-Instance GPU) for the nvml collector: a GPU's MIG devices, their instance IDs, and
// the capability device nodes a container needs to use one.
#ifndef DEVSCOPE_COLLECTORS_NVML_MIG_H_
#define DEVSCOPE_COLLECTORS_NVML_MIG_H_

#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "collectors/node_roots.h"
#include "collectors/nvml_loader.h"
#include "common/warn_once.h"

namespace devscope {

// The MIG devices of `device` when MIG is enabled on it; empty when it is not (or NVML lacks the
// MIG calls). `uuid` names the GPU in logs.
std::vector<nvmlDevice_t> ListMigDevices(NvmlCaller& nvml, nvmlDevice_t device,
                                         const std::string& uuid, bool& lost);

// A MIG device's GPU and compute instance IDs; NVML_INVALID_INSTANCE_ID when unknown.
struct MigInstance {
  unsigned int gpu_instance = NVML_INVALID_INSTANCE_ID;
  unsigned int compute_instance = NVML_INVALID_INSTANCE_ID;
};
MigInstance GetMigInstance(NvmlCaller& nvml, nvmlDevice_t mig, const std::string& mig_uuid,
                           bool& lost);

// The driver's table of MIG capability minors (/proc/driver/nvidia-caps/mig-minors): lines
// "gpu<minor>/gi<id>/access <cap minor>" and "gpu<minor>/gi<id>/ci<id>/access <cap minor>" (plus
// "config" and "monitor"). Lines that are not "PATH NUMBER" are skipped.
std::map<std::string, unsigned int> ParseMigMinors(absl::string_view text);

// The table, read once: it lists every possible instance, whether or not it exists (4322 lines on
// an H100 with MIG off), so it is fixed while the driver is loaded. Read on the first pass that
// sees a MIG device; an unreadable file is tried again on the next.
class MigMinorsTable {
 public:
  explicit MigMinorsTable(std::string file) : file_(std::move(file)) {}
  const std::string& file() const { return file_; }
  const std::map<std::string, unsigned int>& Get(WarnOnce& warn);

 private:
  const std::string file_;
  std::map<std::string, unsigned int> minors_;  // the collector's thread only
};

// The capability nodes (relative to /dev, "nvidia-caps/nvidia-cap<N>") of the GPU instance and
// compute instance of a MIG device of GPU /dev/nvidia<gpu_minor>: a MIG device is usable only
// with them. A node the table does not list, or that does not exist (looked up through
// NodeRoots::DevfsPath; the driver creates them only on request: nvidia-modprobe, or `nvidia-ctk
// system create-device-nodes`), is left out and logged once, rather than handed out as a dead path.
std::vector<std::string> MigCapabilityNodes(const std::map<std::string, unsigned int>& minors,
                                            const std::string& minors_file, const NodeRoots& roots,
                                            unsigned int gpu_minor, const MigInstance& instance,
                                            const std::string& mig_uuid, WarnOnce& warn);

}  // namespace devscope

#endif  // DEVSCOPE_COLLECTORS_NVML_MIG_H_
