// The drm collector: AMD and Intel GPUs from <sysfs>/class/drm/cardN (collectors/drm.cc).
#ifndef DEVSCOPE_COLLECTORS_DRM_H_
#define DEVSCOPE_COLLECTORS_DRM_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "collectors/collector.h"
#include "collectors/node_roots.h"
#include "common/options.h"

namespace devscope {

// YAML collectors.drm.*.
struct DrmOptions {
  // collectors.drm.advertise: the extended resource name devscope's device plugin advertises
  // AMD and Intel GPUs under; empty: devscope only tracks and joins them.
  std::string advertise_resource;
};
void DeclareOptions(OptionDeclarer& d, DrmOptions& o);

// NotFound when the node has none of these devices.
absl::StatusOr<std::unique_ptr<Collector>> NewDrmCollector(const DrmOptions& options,
                                                           const NodeRoots& roots);

}  // namespace devscope

#endif  // DEVSCOPE_COLLECTORS_DRM_H_
