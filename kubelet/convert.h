// Conversions from the pod-resources wire messages into the snapshot's types (every field,
// nothing dropped).
#ifndef DEVSCOPE_KUBELET_CONVERT_H_
#define DEVSCOPE_KUBELET_CONVERT_H_

#include <vector>

#include "kubelet/pod_resources.h"
#include "podresources/v1/api.pb.h"

namespace devscope {

PodResources ConvertPod(const v1::PodResources& pod);
std::vector<PodResources> ConvertPods(const v1::ListPodResourcesResponse& response);
AllocatableResources ConvertAllocatable(const v1::AllocatableResourcesResponse& response);

// Puts a List reply in one order: pods by namespace and name, each container's device entries
// by resource name, device IDs and NUMA nodes, the IDs and nodes within an entry ascending. The kubelet lists pods and devices in the
// order of its Go maps, which changes from call to call; in one order, a reply that says what the
// last one said has the same bytes, and costs the poller a comparison, not a new snapshot.
// Containers keep their order (sidecars first, then the spec's), as do CPUs, memory and claims.
void SortListReply(v1::ListPodResourcesResponse& reply);

}  // namespace devscope

#endif  // DEVSCOPE_KUBELET_CONVERT_H_
