#include "demo/standin_pod_resources.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "podresources/v1/api.grpc.pb.h"

namespace devscope {
namespace {

// A List reply that is not a ListPodResourcesResponse: field 1 (length-delimited) announces 100
// bytes and the buffer ends long before, so the client's parse fails.
constexpr char kGarbage[] = "\x0a\x64this is not a protobuf message";

absl::string_view DisabledMessage(absl::string_view method) {
  // The kubelet's own wording when a feature gate switches a method off.
  if (method == "Get") return "PodResources API Get method disabled";
  if (method == "GetAllocatableResources")
    return "PodResources API GetAllocatableResources disabled";
  return "PodResources API List disabled";
}

}  // namespace

// What the handlers answer; shared by the stand-in object and every server incarnation.
struct PodResourcesStandin::State {
  mutable absl::Mutex mu;
  // Immutable once published, so a handler serialises it outside the lock.
  std::shared_ptr<const v1::ListPodResourcesResponse> pods ABSL_GUARDED_BY(mu) =
      std::make_shared<v1::ListPodResourcesResponse>();
  v1::AllocatableResourcesResponse allocatable ABSL_GUARDED_BY(mu);
  MethodMode list_mode ABSL_GUARDED_BY(mu) = MethodMode::kServe;
  MethodMode allocatable_mode ABSL_GUARDED_BY(mu) = MethodMode::kServe;
  MethodMode get_mode ABSL_GUARDED_BY(mu) = MethodMode::kServe;
  double qps ABSL_GUARDED_BY(mu) = 100;
  int burst ABSL_GUARDED_BY(mu) = 10;
  double tokens ABSL_GUARDED_BY(mu) = 10;
  absl::Time refilled ABSL_GUARDED_BY(mu) = absl::Now();
  absl::Duration list_delay ABSL_GUARDED_BY(mu) = absl::ZeroDuration();
  bool garbage ABSL_GUARDED_BY(mu) = false;
  absl::flat_hash_map<std::string, int> calls ABSL_GUARDED_BY(mu);

  // Counts the call, then applies the rate limit (the kubelet's interceptor runs before the
  // method) and the method's mode.
  grpc::Status Admit(absl::string_view method, MethodMode mode) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    ++calls[std::string(method)];
    if (qps > 0) {
      const absl::Time now = absl::Now();
      tokens = std::min<double>(burst, tokens + absl::ToDoubleSeconds(now - refilled) * qps);
      refilled = now;
      if (tokens < 1) {
        return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "rejected by rate limit");
      }
      tokens -= 1;
    }
    switch (mode) {
      case MethodMode::kServe:
        return grpc::Status::OK;
      case MethodMode::kUnimplemented:
        return grpc::Status(
            grpc::StatusCode::UNIMPLEMENTED,
            absl::StrCat("unknown method ", method, " for service v1.PodResourcesLister"));
      case MethodMode::kDisabled:
        return grpc::Status(grpc::StatusCode::UNKNOWN, std::string(DisabledMessage(method)));
    }
    return grpc::Status::OK;
  }
};

// One server incarnation's service. List is a raw callback method (so that it can answer bytes
// that are not a valid message, and hold an answer back without blocking a gRPC thread); the
// other two methods stay synchronous.
class PodResourcesStandin::Service
    : public v1::PodResourcesLister::WithRawCallbackMethod_List<v1::PodResourcesLister::Service> {
 public:
  explicit Service(std::shared_ptr<State> state) : state_(std::move(state)) {
    delayer_ = std::thread([this] { DelayLoop(); });
  }
  ~Service() override { ShutDown(); }

  // Answers every held-back List and makes later ones answer at once. Idempotent.
  void ShutDown() {
    {
      absl::MutexLock lock(&mu_);
      shutting_down_ = true;
    }
    if (delayer_.joinable()) delayer_.join();
  }

  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* context,
                                 const grpc::ByteBuffer* /*request*/,
                                 grpc::ByteBuffer* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    std::shared_ptr<const v1::ListPodResourcesResponse> pods;
    bool garbage = false;
    absl::Duration delay;
    grpc::Status status;
    {
      absl::MutexLock lock(&state_->mu);
      status = state_->Admit("List", state_->list_mode);
      pods = state_->pods;
      garbage = state_->garbage;
      delay = state_->list_delay;
    }
    if (status.ok()) {
      std::string bytes;
      if (garbage) {
        bytes.assign(kGarbage, sizeof(kGarbage) - 1);
      } else {
        pods->SerializeToString(&bytes);
      }
      grpc::Slice slice(bytes);
      *response = grpc::ByteBuffer(&slice, 1);
    }
    if (delay > absl::ZeroDuration()) {
      absl::MutexLock lock(&mu_);
      if (!shutting_down_) {
        pending_.push_back(Pending{absl::Now() + delay, reactor, status});
        woken_ = true;
        return reactor;
      }
    }
    reactor->Finish(status);
    return reactor;
  }

  grpc::Status GetAllocatableResources(grpc::ServerContext* /*context*/,
                                       const v1::AllocatableResourcesRequest* /*request*/,
                                       v1::AllocatableResourcesResponse* response) override {
    absl::MutexLock lock(&state_->mu);
    grpc::Status status = state_->Admit("GetAllocatableResources", state_->allocatable_mode);
    if (status.ok()) *response = state_->allocatable;
    return status;
  }

  grpc::Status Get(grpc::ServerContext* /*context*/, const v1::GetPodResourcesRequest* request,
                   v1::GetPodResourcesResponse* response) override {
    absl::MutexLock lock(&state_->mu);
    grpc::Status status = state_->Admit("Get", state_->get_mode);
    if (!status.ok()) return status;
    for (const v1::PodResources& pod : state_->pods->pod_resources()) {
      if (pod.namespace_() == request->pod_namespace() && pod.name() == request->pod_name()) {
        *response->mutable_pod_resources() = pod;
        return grpc::Status::OK;
      }
    }
    // The kubelet answers an unknown pod with code Unknown, not NotFound.
    return grpc::Status(grpc::StatusCode::UNKNOWN,
                        absl::StrCat("pod ", request->pod_name(), " in namespace ",
                                     request->pod_namespace(), " not found"));
  }

 private:
  struct Pending {
    absl::Time due;
    grpc::ServerUnaryReactor* reactor;
    grpc::Status status;
  };

  // Finishes held-back List calls when they are due; on shutdown, answers all of them (the
  // server's Shutdown waits for every callback call to finish).
  void DelayLoop() {
    while (true) {
      std::vector<Pending> due;
      bool stop = false;
      {
        absl::MutexLock lock(&mu_);
        absl::Time next = absl::InfiniteFuture();
        for (const Pending& p : pending_) next = std::min(next, p.due);
        if (!shutting_down_ && next > absl::Now()) {
          woken_ = false;
          auto wake = [this]()
                          ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return woken_ || shutting_down_; };
          mu_.AwaitWithDeadline(absl::Condition(&wake), next);
        }
        stop = shutting_down_;
        const absl::Time now = absl::Now();
        auto keep = std::partition(pending_.begin(), pending_.end(),
                                   [&](const Pending& p) { return !stop && p.due > now; });
        due.assign(keep, pending_.end());
        pending_.erase(keep, pending_.end());
      }
      for (Pending& p : due) {
        p.reactor->Finish(stop ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "kubelet stopping")
                               : p.status);
      }
      if (stop) return;
    }
  }

  const std::shared_ptr<State> state_;
  absl::Mutex mu_;
  std::vector<Pending> pending_ ABSL_GUARDED_BY(mu_);
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  bool woken_ ABSL_GUARDED_BY(mu_) = false;
  std::thread delayer_;
};

// One listening incarnation: a kubelet start.
class PodResourcesStandin::Server {
 public:
  explicit Server(std::shared_ptr<State> state) : service_(std::move(state)) {}
  ~Server() { ShutDown(); }

  absl::Status Listen(const std::string& socket_path) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort(absl::StrCat("unix:", socket_path), grpc::InsecureServerCredentials());
    builder.SetMaxSendMessageSize(-1);  // the kubelet sets no limit: a 20 MiB List goes out
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    if (server_ == nullptr) {
      return absl::UnavailableError(
          absl::StrCat("pod-resources stand-in cannot listen on unix socket ", socket_path));
    }
    return absl::OkStatus();
  }

  void ShutDown() {
    service_.ShutDown();
    if (server_ != nullptr) {
      // Calls still running after a second are cancelled.
      server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
      server_->Wait();
      server_.reset();
    }
  }

 private:
  Service service_;
  std::unique_ptr<grpc::Server> server_;
};

PodResourcesStandin::PodResourcesStandin(std::string socket_path)
    : socket_path_(std::move(socket_path)), state_(std::make_shared<State>()) {}

PodResourcesStandin::~PodResourcesStandin() { Stop(); }

absl::StatusOr<std::unique_ptr<PodResourcesStandin>> PodResourcesStandin::Start(
    std::string socket_path) {
  std::unique_ptr<PodResourcesStandin> standin(new PodResourcesStandin(std::move(socket_path)));
  absl::MutexLock lock(&standin->server_mu_);
  absl::Status status = standin->Serve();
  if (!status.ok()) return status;
  return standin;
}

absl::Status PodResourcesStandin::Serve() {
  // A kubelet removes its old socket before it listens again.
  if (::unlink(socket_path_.c_str()) != 0 && errno != ENOENT) {
    return absl::InternalError(
        absl::StrCat("cannot remove ", socket_path_, ": ", std::strerror(errno)));
  }
  auto server = std::make_unique<Server>(state_);
  absl::Status status = server->Listen(socket_path_);
  if (!status.ok()) return status;
  server_ = std::move(server);
  return absl::OkStatus();
}

void PodResourcesStandin::Stop() {
  absl::MutexLock lock(&server_mu_);
  if (server_ == nullptr) return;
  server_->ShutDown();
  server_.reset();
  ::unlink(socket_path_.c_str());
}

absl::Status PodResourcesStandin::Restart() {
  absl::MutexLock lock(&server_mu_);
  if (server_ != nullptr) {
    server_->ShutDown();
    server_.reset();
  }
  ::unlink(socket_path_.c_str());
  return Serve();
}

void PodResourcesStandin::SetPods(std::vector<v1::PodResources> pods) {
  auto response = std::make_shared<v1::ListPodResourcesResponse>();
  response->mutable_pod_resources()->Reserve(static_cast<int>(pods.size()));
  for (v1::PodResources& pod : pods) *response->add_pod_resources() = std::move(pod);
  absl::MutexLock lock(&state_->mu);
  state_->pods = std::move(response);
}

void PodResourcesStandin::SetAllocatable(v1::AllocatableResourcesResponse allocatable) {
  absl::MutexLock lock(&state_->mu);
  state_->allocatable = std::move(allocatable);
}

void PodResourcesStandin::SetListMode(MethodMode mode) {
  absl::MutexLock lock(&state_->mu);
  state_->list_mode = mode;
}

void PodResourcesStandin::SetAllocatableMode(MethodMode mode) {
  absl::MutexLock lock(&state_->mu);
  state_->allocatable_mode = mode;
}

void PodResourcesStandin::SetGetMode(MethodMode mode) {
  absl::MutexLock lock(&state_->mu);
  state_->get_mode = mode;
}

void PodResourcesStandin::SetRateLimit(double qps, int burst) {
  absl::MutexLock lock(&state_->mu);
  state_->qps = qps;
  state_->burst = burst;
  state_->tokens = burst;
  state_->refilled = absl::Now();
}

void PodResourcesStandin::SetListDelay(absl::Duration delay) {
  absl::MutexLock lock(&state_->mu);
  state_->list_delay = delay;
}

void PodResourcesStandin::SetGarbage(bool on) {
  absl::MutexLock lock(&state_->mu);
  state_->garbage = on;
}

int PodResourcesStandin::CallCount(absl::string_view method) const {
  absl::MutexLock lock(&state_->mu);
  auto it = state_->calls.find(std::string(method));
  return it == state_->calls.end() ? 0 : it->second;
}

namespace {

void SetTopology(const std::vector<int64_t>& numa_nodes, v1::TopologyInfo* topology) {
  for (int64_t id : numa_nodes) topology->add_nodes()->set_id(id);
}

}  // namespace

v1::ContainerDevices MakeDevices(absl::string_view resource, std::vector<std::string> ids,
                                 std::vector<int64_t> numa_nodes) {
  v1::ContainerDevices devices;
  devices.set_resource_name(std::string(resource));
  for (std::string& id : ids) devices.add_device_ids(std::move(id));
  // No NUMA nodes: no topology at all, as from a plugin that reports none.
  if (!numa_nodes.empty()) SetTopology(numa_nodes, devices.mutable_topology());
  return devices;
}

v1::ContainerMemory MakeMemory(absl::string_view memory_type, uint64_t size,
                               std::vector<int64_t> numa_nodes) {
  v1::ContainerMemory memory;
  memory.set_memory_type(std::string(memory_type));
  memory.set_size(size);
  if (!numa_nodes.empty()) SetTopology(numa_nodes, memory.mutable_topology());
  return memory;
}

v1::DynamicResource MakeClaim(absl::string_view claim_namespace, absl::string_view claim_name,
                              absl::string_view driver, absl::string_view pool,
                              absl::string_view device, std::optional<std::string> share_id,
                              std::vector<std::string> cdi_devices) {
  v1::DynamicResource claim;
  claim.set_claim_namespace(std::string(claim_namespace));
  claim.set_claim_name(std::string(claim_name));
  v1::ClaimResource* resource = claim.add_claim_resources();
  resource->set_driver_name(std::string(driver));
  resource->set_pool_name(std::string(pool));
  resource->set_device_name(std::string(device));
  if (share_id.has_value()) resource->set_share_id(*share_id);
  for (std::string& name : cdi_devices) resource->add_cdi_devices()->set_name(std::move(name));
  return claim;
}

v1::ContainerResources MakeContainer(absl::string_view name,
                                     std::vector<v1::ContainerDevices> devices,
                                     std::vector<int64_t> cpus,
                                     std::vector<v1::ContainerMemory> memory,
                                     std::vector<v1::DynamicResource> claims) {
  v1::ContainerResources container;
  container.set_name(std::string(name));
  for (auto& d : devices) *container.add_devices() = std::move(d);
  for (int64_t cpu : cpus) container.add_cpu_ids(cpu);
  for (auto& m : memory) *container.add_memory() = std::move(m);
  for (auto& c : claims) *container.add_dynamic_resources() = std::move(c);
  return container;
}

v1::PodResources MakePod(absl::string_view ns, absl::string_view name,
                         std::vector<v1::ContainerResources> containers) {
  v1::PodResources pod;
  pod.set_namespace_(std::string(ns));
  pod.set_name(std::string(name));
  for (auto& c : containers) *pod.add_containers() = std::move(c);
  return pod;
}

std::vector<v1::PodResources> MakeFleet(int pods, int containers, int devices, int id_length) {
  std::vector<v1::PodResources> fleet;
  fleet.reserve(pods);
  for (int p = 0; p < pods; ++p) {
    std::vector<v1::ContainerResources> cs;
    for (int c = 0; c < containers; ++c) {
      std::vector<v1::ContainerDevices> ds;
      for (int d = 0; d < devices; ++d) {
        std::string id = absl::StrCat("dev-", p, "-", c, "-", d);
        if (static_cast<int>(id.size()) < id_length) id.resize(id_length, 'x');
        ds.push_back(MakeDevices("example.com/dev", {std::move(id)}, {d % 2}));
      }
      cs.push_back(MakeContainer(absl::StrCat("c", c), std::move(ds)));
    }
    fleet.push_back(MakePod("bulk", absl::StrCat("pod-", p), std::move(cs)));
  }
  return fleet;
}

}  // namespace devscope
