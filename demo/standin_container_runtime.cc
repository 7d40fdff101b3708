#include "demo/standin_container_runtime.h"

#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "cri/v1/api.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace devscope {

struct ContainerRuntimeStandin::State {
  mutable absl::Mutex mu;
  std::vector<StandinContainer> containers ABSL_GUARDED_BY(mu);
  absl::Duration delay ABSL_GUARDED_BY(mu) = absl::ZeroDuration();
  int calls ABSL_GUARDED_BY(mu) = 0;
  bool stopping ABSL_GUARDED_BY(mu) = false;
};

class ContainerRuntimeStandin::Service : public runtime::v1::RuntimeService::Service {
 public:
  explicit Service(std::shared_ptr<State> state) : state_(std::move(state)) {}

  grpc::Status ListContainers(grpc::ServerContext* context,
                              const runtime::v1::ListContainersRequest* /*request*/,
                              runtime::v1::ListContainersResponse* response) override {
    std::vector<StandinContainer> containers;
    {
      absl::MutexLock lock(&state_->mu);
      ++state_->calls;
      // A slow runtime: hold the answer back, but not past the stand-in's own stop.
      const auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mu) {
        return state_->stopping;
      };
      state_->mu.AwaitWithTimeout(absl::Condition(&stopping), state_->delay);
      containers = state_->containers;
    }
    if (context->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
    for (const StandinContainer& c : containers) {
      runtime::v1::Container* out = response->add_containers();
      out->set_id(c.id);
      out->set_pod_sandbox_id(absl::StrCat("sandbox-", c.pod));
      out->mutable_metadata()->set_name(c.container);
      out->set_state(runtime::v1::CONTAINER_RUNNING);
      auto& labels = *out->mutable_labels();
      labels["io.kubernetes.pod.namespace"] = c.ns;
      labels["io.kubernetes.pod.name"] = c.pod;
      labels["io.kubernetes.container.name"] = c.container;
    }
    // A container the kubelet did not make: listed by the runtime, no pod labels.
    response->add_containers()->set_id(std::string(64, 'f'));
    return grpc::Status::OK;
  }

 private:
  std::shared_ptr<State> state_;
};

ContainerRuntimeStandin::ContainerRuntimeStandin(std::string socket_path)
    : socket_path_(std::move(socket_path)), state_(std::make_shared<State>()) {}

absl::StatusOr<std::unique_ptr<ContainerRuntimeStandin>> ContainerRuntimeStandin::Start(
    std::string socket_path) {
  std::unique_ptr<ContainerRuntimeStandin> standin(
      new ContainerRuntimeStandin(std::move(socket_path)));
  ::unlink(standin->socket_path_.c_str());
  standin->service_ = std::make_unique<Service>(standin->state_);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::StrCat("unix://", standin->socket_path_),
                           grpc::InsecureServerCredentials());
  builder.RegisterService(standin->service_.get());
  standin->server_ = builder.BuildAndStart();
  if (standin->server_ == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve the container runtime stand-in on ", standin->socket_path_));
  }
  return standin;
}

ContainerRuntimeStandin::~ContainerRuntimeStandin() {
  {
    absl::MutexLock lock(&state_->mu);
    state_->stopping = true;
  }
  if (server_ != nullptr) server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  ::unlink(socket_path_.c_str());
}

void ContainerRuntimeStandin::SetContainers(std::vector<StandinContainer> containers) {
  absl::MutexLock lock(&state_->mu);
  state_->containers = std::move(containers);
}

void ContainerRuntimeStandin::SetDelay(absl::Duration delay) {
  absl::MutexLock lock(&state_->mu);
  state_->delay = delay;
}

int ContainerRuntimeStandin::CallCount() const {
  absl::MutexLock lock(&state_->mu);
  return state_->calls;
}

}  // namespace devscope
