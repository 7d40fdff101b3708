// `devscope demo`: the whole pipeline on one machine with no cluster. A kubelet stand-in serves
// the pod-resources and device-plugin registration sockets in a temporary directory; simulated
// devices live in a generated devicedir whose telemetry moves and which fault now and then, a NIC
// with SR-IOV VFs in a netdev tree (demo/simulated_nics.h), and NVIDIA GPUs through the build's
// fake NVML library when it is there (demo/simulated_gpus.h; a CRI stand-in names the processes'
// containers); devscope's own device plugin registers with the stand-in, and the demo pods are
// admitted through the plugin's real GetPreferredAllocation and Allocate.
#ifndef DEVSCOPE_DEMO_DEMO_H_
#define DEVSCOPE_DEMO_DEMO_H_

#include "agent/agent_options.h"

namespace devscope {

// Runs until SIGINT or SIGTERM. `options` supplies the web settings; the kubelet and collector
// paths are the demo's own. Returns the process exit status.
int RunDemo(AgentOptions options);

}  // namespace devscope

#endif  // DEVSCOPE_DEMO_DEMO_H_
