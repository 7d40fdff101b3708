#include "deviceplugin/plugin_server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/guard.h"
#include "common/log.h"
#include "deviceplugin/allocate_answer.h"
#include "deviceplugin/preferred_allocation.h"
#include "deviceplugin/v1beta1/api.grpc.pb.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "pluginregistration/v1/api.grpc.pb.h"

namespace devscope {
namespace {

std::optional<ino_t> InodeOf(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return std::nullopt;
  return st.st_ino;
}

void RemoveStaleSocket(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    Log().warn("cannot remove stale plugin socket path={} error=\"{}\"", path,
               std::strerror(errno));
  }
}

// Why no unix socket can be made at `path`, which gRPC's builder does not say (a full or read-only
// file system, a missing directory): the error of a bind(2) tried here.
std::string BindError(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
  const bool bound = fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  const std::string error = bound ? "see gRPC's log" : std::strerror(errno);
  if (bound) ::unlink(path.c_str());
  if (fd >= 0) ::close(fd);
  return error;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The ListAndWatch reactor: one write in flight, the next started from OnWriteDone or Notify,
// finished exactly once, freed in OnDone.

class PluginServer::Stream : public grpc::ServerWriteReactor<v1beta1::ListAndWatchResponse> {
 public:
  explicit Stream(PluginServer* server) : server_(server) {
    server_->AddStream(this);
    Notify();
  }

  // Starts a write when the list changed since the last one and none is in flight.
  void Notify() {
    const v1beta1::ListAndWatchResponse* message = ClaimWrite();
    if (message != nullptr) StartWrite(message);
  }

  // Claims the right to finish: true when the caller must call Finish now; false when finished
  // already or when the write in flight will finish it from OnWriteDone.
  bool ClaimFinish(const grpc::Status& status) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (finished_) return false;
    finished_ = true;
    status_ = status;
    return !writing_;
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      // The client went away (or the server is stopping): nothing more can be written.
      FinishOnce(grpc::Status(grpc::StatusCode::UNAVAILABLE, "stream closed"));
    }
    bool finish_now = false;
    grpc::Status status;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (finished_) {
        finish_now = true;
        status = status_;
      }
    }
    if (finish_now) {
      Finish(status);
      return;
    }
    Notify();
  }

  void OnCancel() override { FinishOnce(grpc::Status::CANCELLED); }

  void OnDone() override {
    server_->RemoveStream(this);
    delete this;
  }

 private:
  void FinishOnce(const grpc::Status& status) {
    if (ClaimFinish(status)) Finish(status);
  }

  const v1beta1::ListAndWatchResponse* ClaimWrite() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (finished_ || writing_) return nullptr;
    uint64_t version = 0;
    std::shared_ptr<const ResourceDevices> current = server_->CurrentFor(&version);
    if (current == nullptr || version == sent_version_) return nullptr;
    sent_version_ = version;
    writing_ = true;
    message_ = std::move(current);  // kept alive until OnWriteDone
    return &message_->response;
  }

  PluginServer* const server_;
  absl::Mutex mu_;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
  uint64_t sent_version_ ABSL_GUARDED_BY(mu_) = 0;
  std::shared_ptr<const ResourceDevices> message_ ABSL_GUARDED_BY(mu_);
};

namespace {

// Answers a unary call with what `rpc` returns; a throw from it answers INTERNAL (RunGuarded
// logs it).
template <typename Rpc>
grpc::ServerUnaryReactor* AnswerGuarded(grpc::CallbackServerContext* context,
                                        absl::string_view method, Rpc rpc) {
  auto* reactor = context->DefaultReactor();
  grpc::Status status;
  const absl::Status guarded = RunGuarded(method, [&] { status = rpc(); });
  reactor->Finish(guarded.ok()
                      ? status
                      : grpc::Status(grpc::StatusCode::INTERNAL, std::string(guarded.message())));
  return reactor;
}

// The unary methods do no blocking work, so they answer inline on the callback thread.
class DevicePluginService : public v1beta1::DevicePlugin::CallbackService {
 public:
  explicit DevicePluginService(PluginServer* server) : server_(server) {}

  grpc::ServerUnaryReactor* GetDevicePluginOptions(
      grpc::CallbackServerContext* context, const v1beta1::Empty*,
      v1beta1::DevicePluginOptions* response) override {
    *response = server_->PluginOptions();
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerWriteReactor<v1beta1::ListAndWatchResponse>* ListAndWatch(
      grpc::CallbackServerContext*, const v1beta1::Empty*) override {
    return new PluginServer::Stream(server_);
  }

  grpc::ServerUnaryReactor* GetPreferredAllocation(
      grpc::CallbackServerContext* context, const v1beta1::PreferredAllocationRequest* request,
      v1beta1::PreferredAllocationResponse* response) override {
    return AnswerGuarded(context, "GetPreferredAllocation",
                         [&] { return server_->GetPreferredAllocation(*request, response); });
  }

  grpc::ServerUnaryReactor* Allocate(grpc::CallbackServerContext* context,
                                     const v1beta1::AllocateRequest* request,
                                     v1beta1::AllocateResponse* response) override {
    return AnswerGuarded(context, "Allocate",
                         [&] { return server_->Allocate(*request, response); });
  }

  grpc::ServerUnaryReactor* PreStartContainer(grpc::CallbackServerContext* context,
                                              const v1beta1::PreStartContainerRequest* request,
                                              v1beta1::PreStartContainerResponse*) override {
    return AnswerGuarded(context, "PreStartContainer",
                         [&] { return server_->PreStartContainer(*request); });
  }

 private:
  PluginServer* const server_;
};

// The plugin-watcher route: the kubelet's plugin watcher finds this socket in plugins_registry,
// asks GetInfo, dials the endpoint and reports the outcome.
class PluginRegistrationService : public pluginregistration::Registration::CallbackService {
 public:
  explicit PluginRegistrationService(PluginServer* server) : server_(server) {}

  grpc::ServerUnaryReactor* GetInfo(grpc::CallbackServerContext* context,
                                    const pluginregistration::InfoRequest*,
                                    pluginregistration::PluginInfo* response) override {
    response->set_type("DevicePlugin");
    response->set_name(server_->resource());
    // The kubelet's device manager dials the plugin-watcher endpoint as given, so it is the
    // socket's absolute path (on the Register route it is the bare file name instead).
    response->set_endpoint(server_->socket_path());
    response->add_supported_versions("v1beta1");
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* NotifyRegistrationStatus(
      grpc::CallbackServerContext* context, const pluginregistration::RegistrationStatus* request,
      pluginregistration::RegistrationStatusResponse*) override {
    server_->RecordRegistration(request->plugin_registered());
    if (request->plugin_registered()) {
      Log().info("device plugin registered through the plugin watcher resource={}",
                 server_->resource());
    } else {
      Log().error("plugin watcher registration failed resource={} error=\"{}\"",
                  server_->resource(), request->error());
    }
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  PluginServer* const server_;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// PluginServer

PluginServer::PluginServer(Options options) : options_(std::move(options)) {
  SetRegistered(false);
  // Every result's series exists from the start, at 0: a series that is born at 1 shows no
  // increase(), and the alert on refused allocations would miss the first one.
  const prometheus::Labels resource = {{"resource", options_.resource}};
  auto with_result = [&](const char* result) {
    prometheus::Labels labels = resource;
    labels.emplace("result", result);
    return labels;
  };
  if (options_.metrics.registrations != nullptr) {
    for (const char* result : {"success", "failure"}) {
      options_.metrics.registrations->Add(with_result(result));
    }
  }
  if (options_.metrics.allocations != nullptr) {
    for (const char* result : {"success", "unknown_device", "unhealthy_device"}) {
      options_.metrics.allocations->Add(with_result(result));
    }
  }
}

PluginServer::~PluginServer() { Shutdown(); }

std::string PluginServer::socket_name() const {
  size_t slash = options_.socket_path.rfind('/');
  return slash == std::string::npos ? options_.socket_path : options_.socket_path.substr(slash + 1);
}

absl::Status PluginServer::Serve() {
  absl::MutexLock lock(&serve_mu_);
  ShutdownLocked();
  RemoveStaleSocket(options_.socket_path);
  if (!options_.registry_socket_path.empty()) RemoveStaleSocket(options_.registry_socket_path);

  auto plugin_service = std::make_unique<DevicePluginService>(this);
  std::unique_ptr<PluginRegistrationService> registration_service;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::StrCat("unix:", options_.socket_path),
                           grpc::InsecureServerCredentials());
  builder.RegisterService(plugin_service.get());
  if (!options_.registry_socket_path.empty()) {
    registration_service = std::make_unique<PluginRegistrationService>(this);
    builder.AddListeningPort(absl::StrCat("unix:", options_.registry_socket_path),
                             grpc::InsecureServerCredentials());
    builder.RegisterService(registration_service.get());
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot serve the device plugin for ",
                                               options_.resource, " on ", options_.socket_path,
                                               ": ", BindError(options_.socket_path)));
  }
  server_ = std::move(server);
  plugin_service_ = std::move(plugin_service);
  registration_service_ = std::move(registration_service);
  socket_inode_ = InodeOf(options_.socket_path).value_or(0);
  registry_inode_ = options_.registry_socket_path.empty()
                        ? 0
                        : InodeOf(options_.registry_socket_path).value_or(0);
  return absl::OkStatus();
}

void PluginServer::Shutdown() {
  absl::MutexLock lock(&serve_mu_);
  ShutdownLocked();
}

void PluginServer::ShutdownLocked() {
  if (server_ == nullptr) return;
  // Finish every stream first so the clients see a clean end rather than a cancellation.
  const grpc::Status stopping(grpc::StatusCode::UNAVAILABLE, "device plugin server restarting");
  std::vector<Stream*> to_finish;
  {
    absl::MutexLock streams_lock(&streams_mu_);
    for (const auto& [stream, serial] : streams_) {
      if (stream->ClaimFinish(stopping)) to_finish.push_back(stream);
    }
  }
  // A claimed stream cannot reach OnDone before its Finish, so these pointers stay valid.
  for (Stream* stream : to_finish) stream->Finish(stopping);
  // Cancels what is still pending after the deadline and waits for every callback to complete.
  server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  server_->Wait();
  {
    absl::MutexLock streams_lock(&streams_mu_);
    auto none = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(streams_mu_) { return streams_.empty(); };
    streams_mu_.AwaitWithTimeout(absl::Condition(&none), absl::Seconds(2));
  }
  server_.reset();
  plugin_service_.reset();
  registration_service_.reset();
  socket_inode_ = 0;
  registry_inode_ = 0;
}

bool PluginServer::SocketsIntact() const {
  absl::MutexLock lock(&serve_mu_);
  if (server_ == nullptr) return false;
  if (InodeOf(options_.socket_path) != std::optional<ino_t>(socket_inode_)) return false;
  if (!options_.registry_socket_path.empty() &&
      InodeOf(options_.registry_socket_path) != std::optional<ino_t>(registry_inode_)) {
    return false;
  }
  return true;
}

void PluginServer::Update(std::shared_ptr<const ResourceDevices> devices) {
  {
    absl::MutexLock lock(&mu_);
    bool changed = !SameAdvertisement(devices_.get(), devices.get());
    devices_ = std::move(devices);
    if (!changed) return;  // e.g. only the Allocate spec changed: nothing to stream
    ++version_;
  }
  NotifyStreams();
}

void PluginServer::Resend() {
  {
    absl::MutexLock lock(&mu_);
    ++version_;
  }
  NotifyStreams();
}

std::shared_ptr<const ResourceDevices> PluginServer::Devices() const {
  absl::MutexLock lock(&mu_);
  return devices_;
}

std::shared_ptr<const ResourceDevices> PluginServer::CurrentFor(uint64_t* version) const {
  absl::MutexLock lock(&mu_);
  *version = version_;
  return devices_;
}

void PluginServer::NotifyStreams() {
  absl::MutexLock lock(&streams_mu_);
  // StartWrite never runs a reaction inline, so calling it under streams_mu_ cannot re-enter
  // RemoveStream; a stream with a claimed write stays alive until its OnWriteDone.
  for (const auto& [stream, serial] : streams_) stream->Notify();
}

uint64_t PluginServer::AddStream(Stream* stream) {
  uint64_t serial = 0;
  {
    absl::MutexLock lock(&streams_mu_);
    serial = ++streams_opened_;
    streams_[stream] = serial;
  }
  Log().debug("ListAndWatch stream opened resource={} stream={}", options_.resource, serial);
  if (options_.on_streams_changed) options_.on_streams_changed();
  return serial;
}

void PluginServer::RemoveStream(Stream* stream) {
  {
    absl::MutexLock lock(&streams_mu_);
    streams_.erase(stream);
  }
  Log().debug("ListAndWatch stream closed resource={}", options_.resource);
  if (options_.on_streams_changed) options_.on_streams_changed();
}

int PluginServer::LiveStreams() const {
  absl::MutexLock lock(&streams_mu_);
  return static_cast<int>(streams_.size());
}

uint64_t PluginServer::StreamsOpened() const {
  absl::MutexLock lock(&streams_mu_);
  return streams_opened_;
}

bool PluginServer::StreamOpen(uint64_t serial) const {
  absl::MutexLock lock(&streams_mu_);
  for (const auto& [stream, number] : streams_) {
    if (number == serial) return true;
  }
  return false;
}

v1beta1::DevicePluginOptions PluginServer::PluginOptions() const {
  v1beta1::DevicePluginOptions options;
  options.set_pre_start_required(options_.settings.pre_start_container);
  options.set_get_preferred_allocation_available(true);
  return options;
}

void PluginServer::SetRegistered(bool registered) {
  if (options_.metrics.registered == nullptr) return;
  options_.metrics.registered->Add({{"resource", options_.resource}}).Set(registered ? 1 : 0);
}

void PluginServer::RecordRegistration(bool success) {
  SetRegistered(success);
  if (options_.metrics.registrations != nullptr) {
    options_.metrics.registrations
        ->Add({{"resource", options_.resource}, {"result", success ? "success" : "failure"}})
        .Increment();
  }
}

void PluginServer::CountAllocation(absl::string_view result) {
  if (options_.metrics.allocations == nullptr) return;
  options_.metrics.allocations
      ->Add({{"resource", options_.resource}, {"result", std::string(result)}})
      .Increment();
}

grpc::Status PluginServer::Allocate(const v1beta1::AllocateRequest& request,
                                    v1beta1::AllocateResponse* response) {
  std::shared_ptr<const ResourceDevices> devices = Devices();
  // Check every ID of every container before answering anything: a refused call allocates
  // nothing.
  for (const v1beta1::ContainerAllocateRequest& container : request.container_requests()) {
    for (const std::string& id : container.devices_ids()) {
      const PluginDevice* device = devices == nullptr ? nullptr : devices->Find(id);
      if (device == nullptr) {
        CountAllocation("unknown_device");
        Log().warn("Allocate refused: unknown device resource={} device={}", options_.resource,
                   QuoteForLog(id));
        Resend();
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            absl::StrCat("unknown device ID ", QuoteForLog(id), " for resource ",
                                         options_.resource, "; nothing was allocated"));
      }
      if (!device->healthy) {
        CountAllocation("unhealthy_device");
        Log().warn("Allocate refused: unhealthy device resource={} device={}", options_.resource,
                   QuoteForLog(id));
        Resend();
        return grpc::Status(
            grpc::StatusCode::FAILED_PRECONDITION,
            absl::StrCat("device ", QuoteForLog(id), " of resource ", options_.resource,
                         " is unhealthy; nothing was allocated"));
      }
    }
  }
  const AllocateWith with = options_.settings.allocate_with.value_or(AllocateWith::kDeviceSpecs);
  for (const v1beta1::ContainerAllocateRequest& container : request.container_requests()) {
    std::vector<const PluginDevice*> given;
    for (const std::string& id : container.devices_ids()) given.push_back(devices->Find(id));
    FillContainerAnswer(given, with, *response->add_container_responses());
  }
  CountAllocation("success");
  Log().debug("Allocate resource={} containers={}", options_.resource,
              request.container_requests_size());
  return grpc::Status::OK;
}

grpc::Status PluginServer::GetPreferredAllocation(
    const v1beta1::PreferredAllocationRequest& request,
    v1beta1::PreferredAllocationResponse* response) {
  std::shared_ptr<const ResourceDevices> devices = Devices();
  NumaLookup numa_of = [&devices](const std::string& id) -> std::optional<int64_t> {
    const PluginDevice* device = devices == nullptr ? nullptr : devices->Find(id);
    return device == nullptr ? std::nullopt : device->numa_node;
  };
  for (const v1beta1::ContainerPreferredAllocationRequest& container :
       request.container_requests()) {
    if (container.allocation_size() < 0) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          absl::StrCat("negative allocation_size ", container.allocation_size()));
    }
    std::vector<std::string> available(container.available_deviceids().begin(),
                                       container.available_deviceids().end());
    std::vector<std::string> must(container.must_include_deviceids().begin(),
                                  container.must_include_deviceids().end());
    std::vector<std::string> chosen = PreferredAllocation(
        available, must, container.allocation_size(), numa_of, options_.settings.allocation_policy);
    auto* out = response->add_container_responses();
    for (std::string& id : chosen) out->add_deviceids(std::move(id));
  }
  return grpc::Status::OK;
}

grpc::Status PluginServer::PreStartContainer(const v1beta1::PreStartContainerRequest& request) {
  Log().info("PreStartContainer resource={} devices=\"{}\"", options_.resource,
             absl::StrJoin(request.devices_ids(), ","));
  return grpc::Status::OK;
}

}  // namespace devscope
