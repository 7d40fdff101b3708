// The nvml collector: NVIDIA GPUs and their MIG devices through libnvidia-ml, loaded with dlopen()
// at run time (collectors/nvml.cc).
#ifndef DEVSCOPE_COLLECTORS_NVML_H_
#define DEVSCOPE_COLLECTORS_NVML_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collectors/collector.h"
#include "collectors/node_roots.h"
#include "common/clock.h"
#include "common/options.h"

namespace devscope {

// YAML collectors.nvml.*.
struct NvmlOptions {
  // advertise: the extended resource name devscope's device plugin advertises NVIDIA GPUs under;
  // empty: devscope only tracks and joins them (NVIDIA's own plugin may advertise them).
  std::string advertise_resource;
  std::string library = "libnvidia-ml.so.1";  // library: opened with dlopen
  // ignored_xids: XIDs that do not make a GPU unhealthy (application errors).
  std::vector<uint64_t> ignored_xids = {13, 31, 43, 45, 68};
  // xid_recovery: a GPU made unhealthy by a critical XID becomes healthy again after this long
  // without another critical XID (a reset or a recovered fault leaves it quiet; a broken GPU keeps
  // reporting). Zero: never recover while devscope runs.
  absl::Duration xid_recovery = absl::Minutes(10);
  // mig_minors_file: the driver's table of MIG capability minors, for the /dev/nvidia-caps nodes
  // a MIG device needs.
  std::string mig_minors_file = "/proc/driver/nvidia-caps/mig-minors";
};
void DeclareOptions(OptionDeclarer& d, NvmlOptions& o);

// NotFound when the library cannot be loaded or finds no GPU.
absl::StatusOr<std::unique_ptr<Collector>> NewNvmlCollector(const NvmlOptions& options,
                                                            const NodeRoots& roots);
// The same with XID health recovery timed by `clock` (which must outlive the collector).
absl::StatusOr<std::unique_ptr<Collector>> NewNvmlCollector(const NvmlOptions& options,
                                                            const NodeRoots& roots, Clock& clock);

}  // namespace devscope

#endif  // DEVSCOPE_COLLECTORS_NVML_H_
