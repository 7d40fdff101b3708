#include "test/support/rich_pods.h"

#include "demo/standin_pod_resources.h"

namespace devscope {

std::vector<v1::PodResources> RichPods() {
  return {
      MakePod("ml", "trainer",
              {
                  // A restartable init container (sidecar) comes first, as the kubelet lists it.
                  MakeContainer("log-shipper", {MakeDevices("example.com/nic", {"0000:3b:00.2"})}),
                  MakeContainer("main",
                                {MakeDevices("nvidia.com/gpu", {"GPU-aaa", "GPU-bbb"}, {0}),
                                 MakeDevices("example.com/widget", {"w0"})},  // no topology
                                {2, 3, 4, 5, 10},
                                {MakeMemory("memory", 1 << 30, {0}),
                                 MakeMemory("hugepages-1Gi", 2ULL << 30, {0, 1})},
                                {MakeClaim("ml", "gpu-claim", "gpu.example.com", "node-a", "gpu-3",
                                           "4fd2a9c0-share", {"example.com/gpu=gpu3"})}),
              }),
      // A time-sliced GPU replica held by two containers of another pod.
      MakePod("web", "shared",
              {MakeContainer("a", {MakeDevices("nvidia.com/gpu", {"GPU-ccc::1"}, {1})}),
               MakeContainer("b", {MakeDevices("nvidia.com/gpu", {"GPU-ccc::1"}, {1})})}),
  };
}

}  // namespace devscope
