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

}  // namespace devscope

#endif  // DEVSCOPE_KUBELET_CONVERT_H_
