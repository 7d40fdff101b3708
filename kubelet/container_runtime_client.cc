#include "kubelet/container_runtime_client.h"

#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "cri/v1/api.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "kubelet/grpc_pod_resources_client.h"

namespace devscope {
namespace {

// The labels the kubelet puts on every container it asks the runtime to make.
constexpr char kNamespaceLabel[] = "io.kubernetes.pod.namespace";
constexpr char kPodLabel[] = "io.kubernetes.pod.name";
constexpr char kContainerLabel[] = "io.kubernetes.container.name";

std::string Label(const runtime::v1::Container& c, const char* name) {
  auto it = c.labels().find(name);
  return it == c.labels().end() ? std::string() : it->second;
}

}  // namespace

std::vector<RuntimeContainer> ContainersFromReply(
    const runtime::v1::ListContainersResponse& reply) {
  std::vector<RuntimeContainer> containers;
  containers.reserve(reply.containers_size());
  for (const runtime::v1::Container& c : reply.containers()) {
    RuntimeContainer container{c.id(), Label(c, kNamespaceLabel), Label(c, kPodLabel),
                               Label(c, kContainerLabel)};
    if (container.id.empty() || container.pod.empty()) continue;  // not the kubelet's
    if (container.container.empty()) container.container = c.metadata().name();
    containers.push_back(std::move(container));
  }
  return containers;
}

namespace {

class GrpcContainerRuntimeClient : public ContainerRuntimeClient {
 public:
  GrpcContainerRuntimeClient(std::string socket_path, uint64_t max_message_size)
      // The pod-resources channel's settings suit any unix socket of the node: a private
      // subchannel and a short reconnect backoff, so that a restarted runtime is found at once.
      : stub_(runtime::v1::RuntimeService::NewStub(
            MakePodResourcesChannel(socket_path, max_message_size))) {}
  ~GrpcContainerRuntimeClient() override { Shutdown(); }

  absl::StatusOr<std::vector<RuntimeContainer>> ListContainers(absl::Duration timeout) override {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    {
      absl::MutexLock lock(&mu_);
      if (shut_down_) return absl::CancelledError("the container runtime client is shut down");
      in_flight_.insert(&context);
    }
    runtime::v1::ListContainersResponse response;
    const grpc::Status status =
        stub_->ListContainers(&context, runtime::v1::ListContainersRequest(), &response);
    {
      absl::MutexLock lock(&mu_);
      in_flight_.erase(&context);
    }
    if (!status.ok()) return ReplyStatus(status);
    return ContainersFromReply(response);
  }

  void Shutdown() override {
    absl::MutexLock lock(&mu_);
    shut_down_ = true;
    for (grpc::ClientContext* context : in_flight_) context->TryCancel();
  }

 private:
  const std::unique_ptr<runtime::v1::RuntimeService::Stub> stub_;
  absl::Mutex mu_;
  absl::flat_hash_set<grpc::ClientContext*> in_flight_ ABSL_GUARDED_BY(mu_);
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

std::unique_ptr<ContainerRuntimeClient> NewGrpcContainerRuntimeClient(std::string socket_path,
                                                                      uint64_t max_message_size) {
  return std::make_unique<GrpcContainerRuntimeClient>(std::move(socket_path), max_message_size);
}

}  // namespace devscope
