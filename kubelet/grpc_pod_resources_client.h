// The PodResourcesClient that talks to the kubelet: gRPC over its unix socket.
#ifndef DEVSCOPE_KUBELET_GRPC_POD_RESOURCES_CLIENT_H_
#define DEVSCOPE_KUBELET_GRPC_POD_RESOURCES_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "kubelet/pod_resources_client.h"
#include "podresources/v1/api.grpc.pb.h"

namespace devscope {

// A channel to "unix://" + socket_path with insecure credentials and `max_message_size` as the
// receive limit. Its reconnect backoff is short and its subchannel private, so that a fresh channel
// made after a kubelet restart connects at once.
std::shared_ptr<grpc::Channel> MakePodResourcesChannel(const std::string& socket_path,
                                                       uint64_t max_message_size);

// A call's gRPC status as an absl::Status (same code, same message), except that gRPC C++'s
// blocking unary call reports a reply that does not parse as UNIMPLEMENTED "No message returned
// for unary request" (client_unary_call.h). That is a garbled reply, not a method the kubelet
// lacks: it becomes Internal, the code other gRPC implementations give it.
absl::Status ReplyStatus(const grpc::Status& status);

class GrpcPodResourcesClient : public PodResourcesClient {
 public:
  struct Options {
    std::string socket_path;                           // --kubelet.pod-resources-socket
    uint64_t max_message_size = 64 << 20;              // --pod-resources.max-message-size
    absl::Duration call_deadline = absl::Seconds(10);  // per call, from its start
  };

  explicit GrpcPodResourcesClient(Options options);
  ~GrpcPodResourcesClient() override;  // Shutdown()
  GrpcPodResourcesClient(const GrpcPodResourcesClient&) = delete;
  GrpcPodResourcesClient& operator=(const GrpcPodResourcesClient&) = delete;

  absl::Status List(v1::ListPodResourcesResponse* response) override;
  absl::Status GetAllocatableResources(v1::AllocatableResourcesResponse* response) override;
  absl::Status Get(const std::string& pod_namespace, const std::string& pod_name,
                   v1::GetPodResourcesResponse* response) override;
  void Shutdown() override;
  void Reconnect() override;

 private:
  using Stub = v1::PodResourcesLister::Stub;

  // Runs `rpc(stub, context)` with the deadline, registered for cancellation by Shutdown().
  template <typename Rpc>
  absl::Status Call(Rpc rpc);

  const Options options_;
  absl::Mutex mu_;
  // Shared with the calls in flight, so that Reconnect() never pulls a stub from under one.
  std::shared_ptr<Stub> stub_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<grpc::ClientContext*> in_flight_ ABSL_GUARDED_BY(mu_);
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace devscope

#endif  // DEVSCOPE_KUBELET_GRPC_POD_RESOURCES_CLIENT_H_
