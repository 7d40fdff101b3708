// `devscope pod NS/NAME`: one pod's resources as the kubelet reports them, printed as a table.
#ifndef DEVSCOPE_CMD_POD_COMMAND_H_
#define DEVSCOPE_CMD_POD_COMMAND_H_

#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kubelet/pod_resources.h"
#include "kubelet/pod_resources_client.h"
#include "kubelet/poller.h"

namespace devscope {

// The pod `devscope pod NAMESPACE/NAME` asks about.
struct PodRef {
  std::string ns;
  std::string name;
};

// "NAMESPACE/NAME", both parts non-empty; InvalidArgument otherwise. The one check of the argument
// (the command line makes it; a bad one is exit status 2).
absl::StatusOr<PodRef> ParsePodRef(absl::string_view ns_slash_name);

// Asks the kubelet (options.socket_path) for the pod with Get, or with List where Get is not
// served (Unimplemented, or switched off by its feature gate), and prints its containers and their
// devices, exclusive CPUs, pinned memory and DRA devices to `out`. Returns the exit status: 0
// found, 1 not found or the kubelet unreachable (message on stderr).
int RunPodCommand(const PollerOptions& options, const PodRef& pod, std::ostream& out);
// The same through `client`; `socket` names the kubelet in error messages, written to `err`.
int RunPodCommand(PodResourcesClient& client, absl::string_view socket, const PodRef& pod,
                  std::ostream& out, std::ostream& err);

// The table RunPodCommand prints for `pod`.
void PrintPodTable(const PodResources& pod, std::ostream& out);

}  // namespace devscope

#endif  // DEVSCOPE_CMD_POD_COMMAND_H_
