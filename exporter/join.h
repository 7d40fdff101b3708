// Joins the pod-resources picture with the collectors' devices: every tracked device with the
// containers that hold it.
#ifndef DEVSCOPE_EXPORTER_JOIN_H_
#define DEVSCOPE_EXPORTER_JOIN_H_

#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "collectors/collector.h"
#include "exporter/dra_match.h"
#include "exporter/node_view.h"
#include "kubelet/pod_resources.h"

namespace devscope {

// A pod-resources device ID matches a tracked device by its ID or any alias (GPU and MIG UUIDs,
// PCI addresses, cardN, netdev names), compared case-insensitively, with PCI addresses
// normalised ("3B:00.0" and "00000000:3b:00.0" are "0000:3b:00.0"), a sharing suffix "::N"
// stripped (NVIDIA time-slicing "GPU-uuid::3") and Intel's shared "cardN-M" matched as cardN.
// Devices of any plugin are joined alike. A DRA claim's device is matched as
// exporter/dra_match.h says, with `dra`'s alias rules (null: none), and its holders name the
// claim; one that no rule matches is listed in NodeView::unmatched_claim_devices. Either input
// may be null (empty). Cost is linear in devices plus pod-resources IDs (hash lookups only).
std::shared_ptr<const NodeView> Join(std::shared_ptr<const PodResourcesSnapshot> pods,
                                     std::shared_ptr<const DeviceSnapshot> devices,
                                     const DraMatcher* dra = nullptr);

// The form IDs are compared in: lowercase, PCI addresses with a 4-digit domain.
std::string CanonicalDeviceId(absl::string_view id);

}  // namespace devscope

#endif  // DEVSCOPE_EXPORTER_JOIN_H_
