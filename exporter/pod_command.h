// `devscope pod NS/NAME`: one pod's resources as the kubelet reports them, printed as a table.
#ifndef DEVSCOPE_EXPORTER_POD_COMMAND_H_
#define DEVSCOPE_EXPORTER_POD_COMMAND_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/config.h"
#include "kubelet/pod_resources.h"
#include "kubelet/pod_resources_client.h"

namespace devscope {

// Asks the kubelet (config.pod_resources_socket) for the pod with Get, or with List where Get is
// not served (Unimplemented, or switched off by its feature gate), and prints its containers and
// their devices, exclusive CPUs, pinned memory and DRA devices to `out`. Returns the exit status:
// 0 found, 1 not found or the kubelet unreachable (message on stderr), 2 for an argument that is
// not NS/NAME.
int RunPodCommand(const Config& config, absl::string_view ns_slash_name, std::ostream& out);
// The same through `client`; `socket` names the kubelet in error messages, written to `err`.
int RunPodCommand(PodResourcesClient& client, absl::string_view socket,
                  absl::string_view ns_slash_name, std::ostream& out, std::ostream& err);

// The table RunPodCommand prints for `pod`.
void PrintPodTable(const PodResources& pod, std::ostream& out);

}  // namespace devscope

#endif  // DEVSCOPE_EXPORTER_POD_COMMAND_H_
