#include "demo/standin_registration.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <regex>
#include <system_error>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "deviceplugin/v1beta1/api.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"

namespace devscope {
namespace {

constexpr char kKubeletSocket[] = "kubelet.sock";
constexpr char kCheckpoint[] = "kubelet_internal_checkpoint";
constexpr absl::Duration kDialBackTimeout = absl::Seconds(10);  // the kubelet's

// The kubelet's extended-resource check, written here independently of devscope's own
// validator (deviceplugin/resource_name.cc) so that the stand-in is a second opinion.
std::string ResourceNameProblem(const std::string& name) {
  static const std::regex kSubdomain(
      "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$");
  static const std::regex kNamePart("^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$");
  if (name.rfind("requests.", 0) == 0) return "must not start with requests.";
  if (name.find('/') == std::string::npos || name.find("kubernetes.io/") != std::string::npos) {
    return "is a native resource, not an extended one";
  }
  // The kubelet validates "requests." + name as a qualified name.
  std::string quota = "requests." + name;
  size_t slash = quota.find('/');
  if (quota.find('/', slash + 1) != std::string::npos) return "has more than one '/'";
  std::string prefix = quota.substr(0, slash);
  std::string part = quota.substr(slash + 1);
  if (prefix.size() > 253 || !std::regex_match(prefix, kSubdomain)) {
    return "prefix is not a DNS-1123 subdomain";
  }
  if (part.empty() || part.size() > 63 || !std::regex_match(part, kNamePart)) {
    return "name part is not a valid qualified name";
  }
  return "";
}

absl::Status FromGrpc(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

class RegistrationService : public v1beta1::Registration::Service {
 public:
  explicit RegistrationService(RegistrationStandin* standin) : standin_(standin) {}
  grpc::Status Register(grpc::ServerContext*, const v1beta1::RegisterRequest* request,
                        v1beta1::Empty*) override {
    return standin_->HandleRegister(*request);
  }

 private:
  RegistrationStandin* const standin_;
};

}  // namespace

RegistrationStandin::RegistrationStandin() = default;

RegistrationStandin::~RegistrationStandin() { Stop(); }

absl::Status RegistrationStandin::Start(const std::string& dir) {
  absl::MutexLock lock(&lifecycle_mu_);
  return StartLocked(dir);
}

absl::Status RegistrationStandin::StartLocked(const std::string& dir) {
  if (server_ != nullptr) return absl::FailedPreconditionError("the stand-in is already serving");
  std::string path = absl::StrCat(dir, "/", kKubeletSocket);
  ::unlink(path.c_str());
  {
    absl::MutexLock lock(&mu_);
    dir_ = dir;
  }
  auto service = std::make_unique<RegistrationService>(this);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::StrCat("unix:", path), grpc::InsecureServerCredentials());
  builder.RegisterService(service.get());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr) return absl::UnavailableError(absl::StrCat("cannot serve on ", path));
  service_ = std::move(service);
  absl::MutexLock lock(&watch_mu_);
  serving_ = true;
  return absl::OkStatus();
}

void RegistrationStandin::Stop() {
  absl::MutexLock lock(&lifecycle_mu_);
  StopLocked();
}

void RegistrationStandin::StopLocked() {
  {
    absl::MutexLock lock(&watch_mu_);
    serving_ = false;  // a Register still in flight opens no stream now
  }
  if (server_ != nullptr) {
    server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
    server_->Wait();
    server_.reset();
    service_.reset();
  }
  std::map<std::string, Watch> watches;
  {
    absl::MutexLock lock(&watch_mu_);
    watches.swap(watches_);
  }
  // Closing the streams; each one's end marks its devices unhealthy (kubelet behaviour).
  for (auto& [resource, watch] : watches) watch.context->TryCancel();
  for (auto& [resource, watch] : watches) watch.thread.join();
  absl::MutexLock lock(&mu_);
  endpoints_.clear();
}

void RegistrationStandin::DropWatch(const std::string& resource) {
  Watch dropped;
  {
    absl::MutexLock lock(&watch_mu_);
    auto it = watches_.find(resource);
    if (it == watches_.end()) return;
    dropped = std::move(it->second);
    watches_.erase(it);
  }
  dropped.context->TryCancel();
  dropped.thread.join();
}

absl::Status RegistrationStandin::Restart() {
  absl::MutexLock lock(&lifecycle_mu_);
  StopLocked();
  std::string dir;
  {
    absl::MutexLock data_lock(&mu_);
    dir = dir_;
  }
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().filename() == kCheckpoint) continue;
    std::error_code type_ec;
    if (entry.is_socket(type_ec)) std::filesystem::remove(entry.path(), type_ec);
  }
  if (ec) return absl::UnavailableError(absl::StrCat("cannot list ", dir, ": ", ec.message()));
  return StartLocked(dir);
}

grpc::Status RegistrationStandin::HandleRegister(const v1beta1::RegisterRequest& request) {
  Registration record;
  record.version = request.version();
  record.endpoint = request.endpoint();
  record.resource = request.resource_name();
  record.options = request.options();
  record.time = absl::Now();
  auto refuse = [this, &record](const std::string& why) {
    record.accepted = false;
    record.error = why;
    absl::MutexLock lock(&mu_);
    registrations_.push_back(record);
    return grpc::Status(grpc::StatusCode::UNKNOWN, why);
  };
  std::string dir;
  {
    absl::MutexLock lock(&mu_);
    if (refuse_) {
      registrations_.push_back(record);
      registrations_.back().error = "refusing registrations (stand-in set to refuse)";
      return grpc::Status(grpc::StatusCode::UNKNOWN, registrations_.back().error);
    }
    dir = dir_;
  }
  if (request.version() != "v1beta1") {
    return refuse(absl::StrCat("unsupported device plugin API version \"", request.version(),
                               "\"; supported: v1beta1"));
  }
  std::string problem = ResourceNameProblem(request.resource_name());
  if (!problem.empty()) {
    return refuse(absl::StrCat("invalid extended resource name \"", request.resource_name(),
                               "\": ", problem));
  }
  if (request.endpoint().empty() || request.endpoint().find('/') != std::string::npos) {
    return refuse(absl::StrCat("invalid endpoint \"", request.endpoint(), "\""));
  }
  // Dial back, as the kubelet does before answering.
  auto channel = grpc::CreateChannel(absl::StrCat("unix:", dir, "/", request.endpoint()),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1beta1::DevicePlugin::NewStub(channel);
  grpc::ClientContext context;
  context.set_wait_for_ready(true);
  context.set_deadline(absl::ToChronoTime(absl::Now() + kDialBackTimeout));
  v1beta1::Empty empty;
  v1beta1::DevicePluginOptions options;
  grpc::Status dialed = stub->GetDevicePluginOptions(&context, empty, &options);
  if (!dialed.ok()) {
    return refuse(absl::StrCat("cannot dial the plugin at ", request.endpoint(), ": ",
                               dialed.error_message()));
  }
  record.accepted = true;
  {
    absl::MutexLock lock(&mu_);
    registrations_.push_back(record);
    endpoints_[request.resource_name()] = Endpoint{channel, options};
  }
  StartWatch(request.resource_name(), channel);
  return grpc::Status::OK;
}

void RegistrationStandin::StartWatch(const std::string& resource,
                                     std::shared_ptr<grpc::Channel> channel) {
  uint64_t generation;
  {
    absl::MutexLock lock(&mu_);
    generation = ++generation_[resource];
  }
  Watch old;
  {
    absl::MutexLock lock(&watch_mu_);
    if (!serving_) return;
    auto it = watches_.find(resource);
    if (it != watches_.end()) {
      old = std::move(it->second);
      watches_.erase(it);
    }
    Watch& watch = watches_[resource];
    watch.context = std::make_unique<grpc::ClientContext>();
    grpc::ClientContext* context = watch.context.get();
    watch.thread = std::thread([this, resource, channel, context, generation] {
      RunWatch(resource, channel, context, generation);
    });
  }
  // A new registration replaces the old endpoint's stream (its end is not a device failure).
  if (old.context != nullptr) {
    old.context->TryCancel();
    old.thread.join();
  }
}

void RegistrationStandin::RunWatch(std::string resource, std::shared_ptr<grpc::Channel> channel,
                                   grpc::ClientContext* context, uint64_t generation) {
  auto stub = v1beta1::DevicePlugin::NewStub(channel);
  v1beta1::Empty empty;
  std::unique_ptr<grpc::ClientReader<v1beta1::ListAndWatchResponse>> reader =
      stub->ListAndWatch(context, empty);
  v1beta1::ListAndWatchResponse response;
  while (reader->Read(&response)) {
    absl::MutexLock lock(&mu_);
    if (generation_[resource] != generation) break;
    devices_[resource].assign(response.devices().begin(), response.devices().end());
  }
  grpc::Status status = reader->Finish();
  absl::MutexLock lock(&mu_);
  if (generation_[resource] != generation) return;  // replaced by a newer registration
  // The kubelet marks every device of a broken stream unhealthy and never reopens it.
  for (v1beta1::Device& device : devices_[resource]) device.set_health("Unhealthy");
  Log().info("stand-in: ListAndWatch stream ended resource={} code={}", resource,
             static_cast<int>(status.error_code()));
}

std::vector<RegistrationStandin::Registration> RegistrationStandin::Registrations() const {
  absl::MutexLock lock(&mu_);
  return registrations_;
}

std::vector<v1beta1::Device> RegistrationStandin::Devices(const std::string& resource) const {
  absl::MutexLock lock(&mu_);
  auto it = devices_.find(resource);
  return it == devices_.end() ? std::vector<v1beta1::Device>() : it->second;
}

bool RegistrationStandin::WaitForDevices(const std::string& resource,
                                         const DevicePredicate& predicate,
                                         absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto holds = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = devices_.find(resource);
    return predicate(it == devices_.end() ? std::vector<v1beta1::Device>() : it->second);
  };
  return mu_.AwaitWithTimeout(absl::Condition(&holds), timeout);
}

void RegistrationStandin::SetRefuse(bool refuse) {
  absl::MutexLock lock(&mu_);
  refuse_ = refuse;
}

std::string RegistrationStandin::socket_path() const {
  absl::MutexLock lock(&mu_);
  return dir_.empty() ? std::string() : absl::StrCat(dir_, "/", kKubeletSocket);
}

absl::StatusOr<v1beta1::ContainerAllocateResponse> RegistrationStandin::Admit(
    const std::string& resource, int count, std::vector<std::string>* ids) {
  absl::MutexLock admit_lock(&admit_mu_);
  Endpoint endpoint;
  std::vector<std::string> free;
  {
    absl::MutexLock lock(&mu_);
    auto it = endpoints_.find(resource);
    if (it == endpoints_.end()) {
      return absl::FailedPreconditionError(
          absl::StrCat("no device plugin registered for ", resource));
    }
    endpoint = it->second;
    const std::set<std::string>& taken = allocated_[resource];
    for (const v1beta1::Device& device : devices_[resource]) {
      if (device.health() == "Healthy" && !taken.contains(device.id())) free.push_back(device.id());
    }
  }
  if (count < 0 || static_cast<size_t>(count) > free.size()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("want ", count, " of ", resource, ", ", free.size(), " healthy devices free"));
  }
  auto stub = v1beta1::DevicePlugin::NewStub(endpoint.channel);
  std::vector<std::string> chosen(free.begin(), free.begin() + count);
  if (endpoint.options.get_preferred_allocation_available()) {
    v1beta1::PreferredAllocationRequest request;
    auto* container = request.add_container_requests();
    for (const std::string& id : free) container->add_available_deviceids(id);
    container->set_allocation_size(count);
    v1beta1::PreferredAllocationResponse response;
    grpc::ClientContext context;
    grpc::Status status = stub->GetPreferredAllocation(&context, request, &response);
    // Advice only: used when it is a valid choice, as the kubelet does.
    if (status.ok() && response.container_responses_size() == 1) {
      const auto& preferred = response.container_responses(0).deviceids();
      std::set<std::string> unique(preferred.begin(), preferred.end());
      bool valid = preferred.size() == count &&
                   unique.size() == static_cast<size_t>(preferred.size()) &&
                   std::all_of(preferred.begin(), preferred.end(), [&free](const std::string& id) {
                     return std::find(free.begin(), free.end(), id) != free.end();
                   });
      if (valid) chosen.assign(preferred.begin(), preferred.end());
    }
  }
  v1beta1::AllocateRequest request;
  auto* container = request.add_container_requests();
  for (const std::string& id : chosen) container->add_devices_ids(id);
  v1beta1::AllocateResponse response;
  {
    grpc::ClientContext context;
    grpc::Status status = stub->Allocate(&context, request, &response);
    if (!status.ok()) return FromGrpc(status);
  }
  if (response.container_responses_size() != 1) {
    return absl::InternalError(absl::StrCat("Allocate answered ",
                                            response.container_responses_size(),
                                            " container responses for 1 request"));
  }
  if (endpoint.options.pre_start_required()) {
    v1beta1::PreStartContainerRequest pre_start;
    for (const std::string& id : chosen) pre_start.add_devices_ids(id);
    v1beta1::PreStartContainerResponse pre_start_response;
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    grpc::Status status = stub->PreStartContainer(&context, pre_start, &pre_start_response);
    if (!status.ok()) return FromGrpc(status);
  }
  {
    absl::MutexLock lock(&mu_);
    allocated_[resource].insert(chosen.begin(), chosen.end());
  }
  if (ids != nullptr) *ids = chosen;
  return response.container_responses(0);
}

void RegistrationStandin::Release(const std::vector<std::string>& ids) {
  absl::MutexLock lock(&mu_);
  for (auto& [resource, taken] : allocated_) {
    for (const std::string& id : ids) taken.erase(id);
  }
}

}  // namespace devscope
