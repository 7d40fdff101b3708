#include "kubelet/grpc_pod_resources_client.h"

#include <climits>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpc/grpc.h"

namespace devscope {
namespace {

std::shared_ptr<v1::PodResourcesLister::Stub> NewStub(const std::string& socket_path,
                                                      uint64_t max_message_size) {
  return v1::PodResourcesLister::NewStub(MakePodResourcesChannel(socket_path, max_message_size));
}

}  // namespace

std::shared_ptr<grpc::Channel> MakePodResourcesChannel(const std::string& socket_path,
                                                       uint64_t max_message_size) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(
      max_message_size > static_cast<uint64_t>(INT_MAX) ? -1 : static_cast<int>(max_message_size));
  // A private subchannel: channels to one target otherwise share a subchannel, and with it the
  // reconnect backoff that a recreated channel is meant to escape.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // "unix:///abs/path" for an absolute path, "unix:rel/path" for a relative one.
  const std::string target = absl::StartsWith(socket_path, "/")
                                 ? absl::StrCat("unix://", socket_path)
                                 : absl::StrCat("unix:", socket_path);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

absl::Status ReplyStatus(const grpc::Status& status) {
  if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED &&
      status.error_message() == "No message returned for unary request") {
    return absl::InternalError("the kubelet's reply did not parse as a pod-resources message");
  }
  const int code = static_cast<int>(status.error_code());
  // gRPC's codes are absl's, 0 (OK) to 16 (UNAUTHENTICATED); anything else is Unknown.
  const absl::StatusCode absl_code =
      code >= 0 && code <= 16 ? static_cast<absl::StatusCode>(code) : absl::StatusCode::kUnknown;
  return absl::Status(absl_code, status.error_message());
}

GrpcPodResourcesClient::GrpcPodResourcesClient(Options options)
    : options_(std::move(options)),
      stub_(NewStub(options_.socket_path, options_.max_message_size)) {}

GrpcPodResourcesClient::~GrpcPodResourcesClient() { Shutdown(); }

template <typename Rpc>
absl::Status GrpcPodResourcesClient::Call(Rpc rpc) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + options_.call_deadline));
  std::shared_ptr<Stub> stub;
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return absl::CancelledError("the pod-resources client is shut down");
    in_flight_.insert(&context);
    stub = stub_;
  }
  const grpc::Status status = rpc(*stub, &context);
  {
    absl::MutexLock lock(&mu_);
    in_flight_.erase(&context);
  }
  return ReplyStatus(status);
}

absl::Status GrpcPodResourcesClient::List(v1::ListPodResourcesResponse* response) {
  return Call([response](Stub& stub, grpc::ClientContext* context) {
    return stub.List(context, v1::ListPodResourcesRequest(), response);
  });
}

absl::Status GrpcPodResourcesClient::GetAllocatableResources(
    v1::AllocatableResourcesResponse* response) {
  return Call([response](Stub& stub, grpc::ClientContext* context) {
    return stub.GetAllocatableResources(context, v1::AllocatableResourcesRequest(), response);
  });
}

absl::Status GrpcPodResourcesClient::Get(const std::string& pod_namespace,
                                         const std::string& pod_name,
                                         v1::GetPodResourcesResponse* response) {
  v1::GetPodResourcesRequest request;
  request.set_pod_namespace(pod_namespace);
  request.set_pod_name(pod_name);
  return Call([&request, response](Stub& stub, grpc::ClientContext* context) {
    return stub.Get(context, request, response);
  });
}

void GrpcPodResourcesClient::Shutdown() {
  absl::MutexLock lock(&mu_);
  shut_down_ = true;
  for (grpc::ClientContext* context : in_flight_) context->TryCancel();
}

void GrpcPodResourcesClient::Reconnect() {
  std::shared_ptr<Stub> fresh = NewStub(options_.socket_path, options_.max_message_size);
  absl::MutexLock lock(&mu_);
  stub_ = std::move(fresh);
}

}  // namespace devscope
