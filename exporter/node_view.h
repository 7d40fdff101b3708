// The joined view: every tracked device with the containers that hold it, built by Join()
// (exporter/join.h) from the pod-resources snapshot and the device snapshot. Immutable once built;
// the renderer reads it.
#ifndef DEVSCOPE_EXPORTER_NODE_VIEW_H_
#define DEVSCOPE_EXPORTER_NODE_VIEW_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/strings/string_view.h"
#include "collectors/collector.h"
#include "kubelet/pod_resources.h"

namespace devscope {

// A container that holds a device, per pod-resources: through a device plugin, or through a DRA
// claim (then the claim is named too). The views point into NodeView::pods.
struct Holder {
  absl::string_view ns;
  absl::string_view pod;
  absl::string_view container;
  absl::string_view claim_namespace;  // empty unless held through a DRA claim
  absl::string_view claim_name;
  bool operator==(const Holder&) const = default;
};

// The views point into the NodeView's snapshots, which it keeps alive.
struct JoinedDevice {
  absl::string_view collector;  // which collector reported it
  // The resource label: the device's own resource, else the resource_name under which
  // pod-resources lists it (allocated or allocatable), else empty.
  absl::string_view resource;
  const DeviceReport* report = nullptr;    // points into NodeView::devices_source; never null
  absl::InlinedVector<Holder, 1> holders;  // empty: free (most devices have one holder or none)
};

struct NodeView {
  std::shared_ptr<const PodResourcesSnapshot> pods;      // never null
  std::shared_ptr<const DeviceSnapshot> devices_source;  // never null; owns what `report` points to
  std::vector<JoinedDevice> devices;
  // The DRA devices that no rule names a tracked device by (exporter/dra_match.h), in
  // pod-resources order; they point into `pods`.
  std::vector<const ClaimDevice*> unmatched_claim_devices;
};

}  // namespace devscope

#endif  // DEVSCOPE_EXPORTER_NODE_VIEW_H_
