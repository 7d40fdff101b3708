// The container runtime's CRI socket (runtime.v1.RuntimeService, proto/cri/v1/api.proto), asked
// one read-only question: which containers there are, and which pod and container of Kubernetes
// each is. Used by the process attribution (kubelet/process_attribution.h) to name the
// containers whose processes use a device. A small interface with a gRPC implementation; tests
// serve a stand-in (demo/standin_container_runtime.h).
//
// Thread-safety: thread-safe. Shutdown() may be called from any thread, also during a call.
#ifndef DEVSCOPE_KUBELET_CONTAINER_RUNTIME_CLIENT_H_
#define DEVSCOPE_KUBELET_CONTAINER_RUNTIME_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace runtime::v1 {
class ListContainersResponse;
}  // namespace runtime::v1

namespace devscope {

// A container of a pod, as the runtime lists it with the kubelet's labels.
struct RuntimeContainer {
  std::string id;         // Container.id: what its cgroup is named after
  std::string ns;         // label io.kubernetes.pod.namespace
  std::string pod;        // label io.kubernetes.pod.name
  std::string container;  // label io.kubernetes.container.name, else metadata.name
};

// The containers of a ListContainers reply that the kubelet made (an ID, and its labels name a
// pod), in the reply's order; the reply is the runtime's, so nothing else is assumed of it.
std::vector<RuntimeContainer> ContainersFromReply(const runtime::v1::ListContainersResponse& reply);

class ContainerRuntimeClient {
 public:
  virtual ~ContainerRuntimeClient() = default;
  // Every container of a Kubernetes pod (the kubelet's labels name one); containers the kubelet
  // did not make are left out. Fails with DeadlineExceeded when the runtime takes longer than
  // `timeout`, and with the gRPC status of any other failure.
  virtual absl::StatusOr<std::vector<RuntimeContainer>> ListContainers(absl::Duration timeout) = 0;
  // Cancels a call in flight and fails later ones with Cancelled. Idempotent.
  virtual void Shutdown() = 0;
};

// gRPC over the unix socket `socket_path`; `max_message_size` bounds a reply.
std::unique_ptr<ContainerRuntimeClient> NewGrpcContainerRuntimeClient(std::string socket_path,
                                                                      uint64_t max_message_size);

}  // namespace devscope

#endif  // DEVSCOPE_KUBELET_CONTAINER_RUNTIME_CLIENT_H_
