// The joined view: every tracked device with the containers that hold it, built by Join()
// (exporter/join.h) from the pod-resources snapshot and the device snapshot. Immutable once built;
// the renderer reads it.
#ifndef DEVSCOPE_EXPORTER_NODE_VIEW_H_
#define DEVSCOPE_EXPORTER_NODE_VIEW_H_

#include <memory>
#include <string>
#include <vector>

#include "collectors/collector.h"
#include "kubelet/pod_resources.h"

namespace devscope {

// A container that holds a device, per pod-resources.
struct Holder {
  std::string ns;
  std::string pod;
  std::string container;
  bool operator==(const Holder&) const = default;
};

struct JoinedDevice {
  std::string collector;  // which collector reported it
  // The resource label: the device's own resource, else the resource_name under which
  // pod-resources lists it (allocated or allocatable), else empty.
  std::string resource;
  const DeviceReport* report = nullptr;  // points into NodeView::devices_source; never null
  std::vector<Holder> holders;           // empty: free
};

struct NodeView {
  std::shared_ptr<const PodResourcesSnapshot> pods;  // never null
  std::shared_ptr<const DeviceSnapshot> devices_source;  // never null; owns what `report` points to
  std::vector<JoinedDevice> devices;
};

}  // namespace devscope

#endif  // DEVSCOPE_EXPORTER_NODE_VIEW_H_
