// Pods that use every field of the pod-resources API, for the kubelet tests and `devscope pod`'s.
#ifndef DEVSCOPE_TEST_SUPPORT_RICH_PODS_H_
#define DEVSCOPE_TEST_SUPPORT_RICH_PODS_H_

#include <vector>

#include "podresources/v1/api.pb.h"

namespace devscope {

// ml/trainer: a sidecar (log-shipper) with a NIC VF, then "main" with two GPUs on NUMA 0 and a
// widget without topology, exclusive CPUs 2-5,10, pinned memory and hugepages, and a DRA claim
// with a share ID and a CDI device. web/shared: two containers holding one time-sliced GPU
// replica (GPU-ccc::1).
std::vector<v1::PodResources> RichPods();

}  // namespace devscope

#endif  // DEVSCOPE_TEST_SUPPORT_RICH_PODS_H_
