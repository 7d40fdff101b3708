// A stand-in for a container runtime's CRI socket: a real gRPC server on a unix socket serving
// runtime.v1.RuntimeService/ListContainers (proto/cri/v1/api.proto) from a list the test sets,
// labelled as the kubelet labels its containers, with a delay to play a slow runtime. Used by the
// process attribution's tests, and by `devscope demo` for its shared GPU.
#ifndef DEVSCOPE_DEMO_STANDIN_CONTAINER_RUNTIME_H_
#define DEVSCOPE_DEMO_STANDIN_CONTAINER_RUNTIME_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace grpc {
class Server;
}

namespace devscope {

// One container the stand-in lists.
struct StandinContainer {
  std::string id;  // 64 hex digits, as a runtime's
  std::string ns;
  std::string pod;
  std::string container;
};

class ContainerRuntimeStandin {
 public:
  // Serves on `socket_path` (a stale socket file there is replaced).
  static absl::StatusOr<std::unique_ptr<ContainerRuntimeStandin>> Start(std::string socket_path);
  ~ContainerRuntimeStandin();  // stops serving and removes the socket
  ContainerRuntimeStandin(const ContainerRuntimeStandin&) = delete;
  ContainerRuntimeStandin& operator=(const ContainerRuntimeStandin&) = delete;

  // What ListContainers answers. Thread-safe.
  void SetContainers(std::vector<StandinContainer> containers);
  // Every answer is held back this long (a runtime too slow for devscope's timeout).
  void SetDelay(absl::Duration delay);
  // ListContainers calls received.
  int CallCount() const;

  const std::string& socket_path() const { return socket_path_; }

 private:
  class Service;
  struct State;
  explicit ContainerRuntimeStandin(std::string socket_path);

  const std::string socket_path_;
  std::shared_ptr<State> state_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace devscope

#endif  // DEVSCOPE_DEMO_STANDIN_CONTAINER_RUNTIME_H_
