#include "deviceplugin/plugin_manager.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/guard.h"
#include "common/log.h"
#include "deviceplugin/resource_name.h"
#include "deviceplugin/v1beta1/api.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"

namespace devscope {

namespace {

constexpr char kKubeletSocket[] = "kubelet.sock";
// The kubelet dials the plugin back with a 10 s timeout before answering Register.
constexpr absl::Duration kRegisterDeadline = absl::Seconds(15);
constexpr absl::Duration kSocketCheckInterval = absl::Seconds(1);
constexpr size_t kMaxSocketPath = 107;  // sun_path is 108 bytes with the terminating NUL

absl::StatusOr<std::string> PrepareDirectory(const std::string& dir, absl::string_view what) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot create ", what, " directory ", dir, ": ", ec.message()));
  }
  std::filesystem::path absolute = std::filesystem::absolute(dir, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot resolve ", what, " directory ", dir, ": ", ec.message()));
  }
  std::string path = absolute.lexically_normal().string();
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

}  // namespace

// One asynchronous Register call, owned by the manager (register_calls_) until its completion has
// been taken from the inbox: only the control thread (or Stop, once no call is in flight)
// destroys it, never the completion callback. The callback runs on a thread of gRPC's callback
// completion queue, which is shared by every channel that makes callback calls and is shut down,
// its threads joined and the queue deleted, when the last such channel goes. A channel destroyed
// on one of those threads deletes the queue under the thread still serving it: gRPC 1.51 then
// aborts ("assertion failed: prior > 0", ref_counted.h), as SIGTERM with a Register in flight did.
struct DevicePluginManager::RegisterCall {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1beta1::Registration::Stub> stub;
  grpc::ClientContext context;
  v1beta1::RegisterRequest request;
  v1beta1::Empty response;
};

// Wake-ups from gRPC threads and snapshot publishes to the control thread. Shared so that a late
// callback never touches a destroyed manager; it owns the eventfd.
struct DevicePluginManager::Inbox {
  struct Done {
    uint64_t call = 0;  // the key of register_calls_
    std::string resource;
    uint64_t attempt = 0;
    grpc::Status status;
  };

  Inbox() : event_fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}
  ~Inbox() {
    if (event_fd >= 0) ::close(event_fd);
  }
  void Wake() const {
    uint64_t one = 1;
    // EAGAIN means the counter is already non-zero: the control thread is woken anyway.
    [[maybe_unused]] ssize_t n = ::write(event_fd, &one, sizeof(one));
  }
  void Drain() const {
    uint64_t value;
    [[maybe_unused]] ssize_t n = ::read(event_fd, &value, sizeof(value));
  }

  const int event_fd;
  absl::Mutex mu;
  std::vector<Done> done ABSL_GUARDED_BY(mu);
  int in_flight ABSL_GUARDED_BY(mu) = 0;
};

// Where one resource's registration with the kubelet stands.
enum class RegistrationState {
  kNotServing,     // its plugin socket is not served (yet, or serving failed): nothing to register
  kWatcherRoute,   // served; the kubelet's plugin watcher registers it (plugins_registry_dir)
  kDue,            // served; Register is due at next_attempt
  kInFlight,       // a Register call is in flight
  kInFlightStale,  // in flight, and a reason to register again came meanwhile: again when it ends
  kRegistered,     // registered; the kubelet's ListAndWatch stream is watched
};

// Per-resource state; only the control thread (or Stop after it has ended) touches the fields.
struct DevicePluginManager::Slot {
  bool in_flight() const {
    return state == RegistrationState::kInFlight || state == RegistrationState::kInFlightStale;
  }

  std::unique_ptr<PluginServer> server;
  RegistrationState state = RegistrationState::kNotServing;
  bool serve_error_logged = false;
  absl::Time next_attempt = absl::InfinitePast();
  absl::Duration backoff;
  uint64_t attempt = 0;
  uint64_t opened_at_register = 0;  // StreamsOpened() when the last Register started
  std::string last_error;           // the failure logged since the last success; empty: none
};

DevicePluginManager::DevicePluginManager(const PluginOptions& options,
                                         const SnapshotStore<DeviceSnapshot>& devices,
                                         prometheus::Registry& registry, NodeNumbers numbers)
    : DevicePluginManager(options, devices, registry, Backoff{}, Clock::Real(),
                          std::move(numbers)) {}

DevicePluginManager::DevicePluginManager(const PluginOptions& options,
                                         const SnapshotStore<DeviceSnapshot>& devices,
                                         prometheus::Registry& registry, Backoff backoff,
                                         Clock& clock, NodeNumbers numbers)
    : options_(options),
      devices_(devices),
      backoff_(backoff),
      clock_(clock),
      numbers_(std::move(numbers)) {
  absl::StatusOr<PluginMetrics> metrics = RegisterPluginMetrics(registry);
  if (metrics.ok()) {
    metrics_ = *metrics;
  } else {
    metrics_status_ = metrics.status();
  }
}

DevicePluginManager::~DevicePluginManager() { Stop(); }

absl::Status DevicePluginManager::Start() {
  if (!options_.enabled) {
    Log().info("device plugin disabled");
    return absl::OkStatus();
  }
  if (started_ || stop_.HasBeenNotified()) {
    return absl::FailedPreconditionError("the device plugin manager was already started");
  }
  if (!metrics_status_.ok()) return metrics_status_;
  for (const auto& [resource, settings] : options_.resources) {
    absl::Status valid = ValidateResourceName(resource);
    if (!valid.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("device_plugin.resources: ", valid.message()));
    }
  }
  if (options_.device_plugins_dir.empty()) {
    return absl::InvalidArgumentError("--kubelet.device-plugins-dir is empty");
  }
  absl::StatusOr<std::string> dir = PrepareDirectory(options_.device_plugins_dir, "device-plugins");
  if (!dir.ok()) return dir.status();
  plugins_dir_ = *dir;
  if (!options_.plugins_registry_dir.empty()) {
    absl::StatusOr<std::string> registry =
        PrepareDirectory(options_.plugins_registry_dir, "plugins_registry");
    if (!registry.ok()) return registry.status();
    registry_dir_ = *registry;
  }
  kubelet_socket_ = absl::StrCat(plugins_dir_, "/", kKubeletSocket);
  if (options_.cdi) {
    cdi_ =
        std::make_unique<CdiSpecWriter>(options_.cdi_spec_dir, numbers_, metrics_.cdi_spec_current);
    cdi_->RemoveLeftovers();
  }

  inbox_ = std::make_shared<Inbox>();
  if (inbox_->event_fd < 0) {
    return absl::InternalError(absl::StrCat("eventfd: ", std::strerror(errno)));
  }
  inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_fd_ < 0) {
    return absl::InternalError(absl::StrCat("inotify_init1: ", std::strerror(errno)));
  }
  WatchDirectory();
  if (watch_ < 0) {
    int err = errno;
    ::close(inotify_fd_);
    inotify_fd_ = -1;
    return absl::InternalError(
        absl::StrCat("cannot watch ", plugins_dir_, " with inotify: ", std::strerror(err)));
  }
  started_ = true;
  // A publish wakes the control thread, which then applies the newest snapshot.
  snapshots_ = devices_.Subscribe([inbox = inbox_] { inbox->Wake(); });
  Log().info(
      "device plugin starting dir={} route={}", plugins_dir_,
      registry_dir_.empty() ? "kubelet.sock" : absl::StrCat("plugin watcher ", registry_dir_));
  // A throw is logged by RunGuarded; the thread then ends instead of taking the process down.
  control_ = std::thread([this] {
    RunGuarded("device plugin control loop", [this] { ControlLoop(); }).IgnoreError();
  });
  return absl::OkStatus();
}

void DevicePluginManager::Stop() {
  if (!started_) return;
  started_ = false;
  stop_.Notify();
  snapshots_.Reset();
  inbox_->Wake();
  if (control_.joinable()) control_.join();
  absl::MutexLock lock(&servers_mu_);
  // Registrations in flight: cancel and wait for their callbacks, which touch only the inbox.
  for (auto& [id, call] : register_calls_) call->context.TryCancel();
  {
    absl::MutexLock inbox_lock(&inbox_->mu);
    Inbox* inbox = inbox_.get();
    auto idle = [inbox]()
                    ABSL_EXCLUSIVE_LOCKS_REQUIRED(inbox->mu) { return inbox->in_flight == 0; };
    inbox_->mu.Await(absl::Condition(&idle));
  }
  register_calls_.clear();  // every callback has run: no gRPC thread holds any of them
  for (auto& [resource, slot] : slots_) {
    slot->server->Shutdown();
    slot->server->SetRegistered(false);
  }
  if (inotify_fd_ >= 0) ::close(inotify_fd_);
  inotify_fd_ = -1;
  watch_ = -1;
  cdi_.reset();  // removes the specs it wrote
  Log().info("device plugin stopped");
}

std::vector<std::string> DevicePluginManager::Resources() const {
  absl::MutexLock lock(&servers_mu_);
  std::vector<std::string> out;
  for (const auto& [resource, slot] : slots_) out.push_back(resource);
  return out;
}

int DevicePluginManager::LiveStreams() const {
  absl::MutexLock lock(&servers_mu_);
  int total = 0;
  for (const auto& [resource, slot] : slots_) total += slot->server->LiveStreams();
  return total;
}

std::string DevicePluginManager::SocketPath(const std::string& resource) const {
  absl::MutexLock lock(&servers_mu_);
  auto it = slots_.find(resource);
  return it == slots_.end() ? std::string() : it->second->server->socket_path();
}

void DevicePluginManager::WatchDirectory() {
  watch_ = ::inotify_add_watch(
      inotify_fd_, plugins_dir_.c_str(),
      IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF);
}

void DevicePluginManager::ControlLoop() {
  {
    absl::MutexLock lock(&servers_mu_);
    ApplySnapshot();
    DriveRegistrations(clock_.Now());
  }
  while (!stop_.HasBeenNotified()) {
    absl::Time next;
    {
      absl::MutexLock lock(&servers_mu_);
      next = NextDeadline(clock_.Now());
    }
    pollfd fds[2] = {{inbox_->event_fd, POLLIN, 0}, {inotify_fd_, POLLIN, 0}};
    const absl::Duration timeout = clock_.PollTimeout(next);
    int ms = static_cast<int>(absl::ToInt64Milliseconds(timeout + absl::Microseconds(999)));
    int ready = ::poll(fds, 2, std::max(ms, 0));
    if (ready < 0 && errno != EINTR) {
      Log().error("device plugin poll failed error=\"{}\"", std::strerror(errno));
    }
    if (stop_.HasBeenNotified()) break;
    if (fds[0].revents & POLLIN) inbox_->Drain();
    absl::MutexLock lock(&servers_mu_);
    absl::Time now = clock_.Now();
    if (fds[1].revents & POLLIN) HandleInotify(now);
    if (devices_.Version() != applied_version_) ApplySnapshot();
    CompleteRegistrations(now);
    ReviewStreams(now);
    if (watch_ < 0) {
      WatchDirectory();
      if (watch_ >= 0) {
        Log().info("watching the device-plugins directory again dir={}", plugins_dir_);
        next_socket_check_ = absl::InfinitePast();
      }
    }
    if (now >= next_socket_check_) CheckSockets(now);
    DriveRegistrations(now);
  }
}

void DevicePluginManager::ApplySnapshot() {
  applied_version_ = devices_.Version();
  std::shared_ptr<const DeviceSnapshot> snapshot = devices_.Current();
  std::map<std::string, std::vector<PluginDevice>> by_resource;
  if (snapshot != nullptr) {
    for (const CollectorReport& report : snapshot->collectors) {
      for (const DeviceReport& device : report.devices) {
        if (!device.info.advertise) continue;
        const std::string& resource = device.info.resource;
        if (!by_resource.contains(resource) && !slots_.contains(resource)) {
          absl::Status valid = ValidateResourceName(resource);
          if (!valid.ok()) {
            if (!invalid_logged_[resource]) {
              invalid_logged_[resource] = true;
              Log().error(
                  "device plugin: refusing to advertise devices under an invalid resource name "
                  "(the kubelet would reject it) device={} error=\"{}\"",
                  device.info.id, std::string(valid.message()));
            }
            continue;
          }
        }
        by_resource[resource].push_back(PluginDevice{device.info.id, device.health.healthy,
                                                     device.info.numa_node, device.info.allocate});
      }
    }
  }
  // Specs first: a device is named in Allocate only once its spec is on disk.
  if (cdi_ != nullptr) cdi_->Apply(by_resource);
  absl::Time now = clock_.Now();
  for (auto& [resource, devices] : by_resource) {
    bool fresh = !slots_.contains(resource);
    Slot* slot = EnsureSlot(resource);
    slot->server->Update(ResourceDevices::Build(std::move(devices)));
    if (fresh) {
      Log().info("serving device plugin resource={} socket={}", resource,
                 slot->server->socket_path());
      CheckSockets(now);
    }
  }
  // A resource whose devices all vanished keeps its server and streams an empty list: the
  // kubelet then reports capacity 0 rather than keeping stale devices for 5 minutes.
  for (auto& [resource, slot] : slots_) {
    if (!by_resource.contains(resource)) slot->server->Update(ResourceDevices::Build({}));
  }
}

DevicePluginManager::Slot* DevicePluginManager::EnsureSlot(const std::string& resource) {
  auto it = slots_.find(resource);
  if (it != slots_.end()) return it->second.get();
  PluginServer::Options options;
  options.resource = resource;
  options.socket_path = absl::StrCat(plugins_dir_, "/", PluginSocketName(resource));
  if (!registry_dir_.empty()) {
    options.registry_socket_path = absl::StrCat(registry_dir_, "/", PluginSocketName(resource));
  }
  options.settings = options_.For(resource);
  options.metrics = metrics_;
  std::shared_ptr<Inbox> inbox = inbox_;
  options.on_streams_changed = [inbox] { inbox->Wake(); };
  auto slot = std::make_unique<Slot>();
  slot->server = std::make_unique<PluginServer>(std::move(options));
  slot->backoff = backoff_.initial;
  Slot* raw = slot.get();
  slots_.emplace(resource, std::move(slot));
  return raw;
}

void DevicePluginManager::HandleInotify(absl::Time now) {
  alignas(inotify_event) char buffer[16 * 1024];
  bool check_sockets = false;
  bool kubelet_created = false;
  for (;;) {
    ssize_t n = ::read(inotify_fd_, buffer, sizeof(buffer));
    if (n <= 0) break;
    for (char* p = buffer; p < buffer + n;) {
      const auto* event = reinterpret_cast<const inotify_event*>(p);
      p += sizeof(inotify_event) + event->len;
      absl::string_view name = event->len > 0 ? absl::string_view(event->name) : "";
      if (event->mask & IN_Q_OVERFLOW) {
        check_sockets = true;
        kubelet_created = true;  // events were lost: assume the worst
      }
      if (event->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) {
        Log().warn("the device-plugins directory went away; watching for it dir={}", plugins_dir_);
        if (watch_ >= 0) ::inotify_rm_watch(inotify_fd_, watch_);
        watch_ = -1;
        check_sockets = true;
      }
      if (name == kKubeletSocket) {
        if (event->mask & (IN_CREATE | IN_MOVED_TO)) {
          kubelet_created = true;
        } else if (event->mask & (IN_DELETE | IN_MOVED_FROM)) {
          Log().warn("kubelet.sock removed; the kubelet is stopping or restarting");
        }
      } else if (event->mask & (IN_DELETE | IN_MOVED_FROM)) {
        check_sockets = true;  // possibly one of ours; CheckSockets compares inodes
      }
    }
  }
  if (check_sockets) CheckSockets(now);
  if (kubelet_created && registry_dir_.empty()) {
    Log().info("kubelet.sock created; the kubelet (re)started, registering again");
    for (auto& [resource, slot] : slots_) RegisterAgain(*slot, now, /*at_once=*/true);
  }
}

void DevicePluginManager::CheckSockets(absl::Time now) {
  next_socket_check_ = now + kSocketCheckInterval;
  for (auto& [resource, slot] : slots_) {
    const bool serving = slot->state != RegistrationState::kNotServing;
    if (serving && slot->server->SocketsIntact()) continue;
    if (serving) {
      Log().info("plugin socket removed (kubelet restart?); serving again resource={}", resource);
    }
    const std::string& path = slot->server->socket_path();
    absl::Status served =
        path.size() > kMaxSocketPath
            ? absl::InvalidArgumentError(
                  absl::StrCat("socket path ", path, " is longer than ", kMaxSocketPath, " bytes"))
            : slot->server->Serve();
    slot->server->SetRegistered(false);
    if (!served.ok()) {
      slot->state = RegistrationState::kNotServing;
      if (!slot->serve_error_logged) {
        slot->serve_error_logged = true;
        Log().error("cannot serve the device plugin; retrying resource={} error=\"{}\"", resource,
                    std::string(served.message()));
      }
      continue;
    }
    slot->serve_error_logged = false;
    if (!registry_dir_.empty()) {
      slot->state = RegistrationState::kWatcherRoute;
      continue;
    }
    // Serving anew: register now, from a fresh backoff.
    if (!slot->in_flight()) slot->state = RegistrationState::kDue;
    RegisterAgain(*slot, now, /*at_once=*/true);
  }
}

void DevicePluginManager::ReviewStreams(absl::Time now) {
  for (auto& [resource, slot] : slots_) {
    if (slot->state != RegistrationState::kRegistered) continue;
    // The kubelet dials back with one stream right after Register (the first one opened since)
    // and never reopens it: once that stream has closed, the kubelet has marked the devices
    // unhealthy and waits for a new registration. Other clients' streams do not count.
    const uint64_t kubelet_stream = slot->opened_at_register + 1;
    if (slot->server->StreamsOpened() >= kubelet_stream &&
        !slot->server->StreamOpen(kubelet_stream)) {
      Log().warn("the kubelet's ListAndWatch stream closed; registering again resource={}",
                 resource);
      slot->server->SetRegistered(false);
      RegisterAgain(*slot, now, /*at_once=*/false);
    }
  }
}

void DevicePluginManager::DriveRegistrations(absl::Time now) {
  for (auto& [resource, slot] : slots_) {
    if (slot->state == RegistrationState::kDue && now >= slot->next_attempt) {
      StartRegister(*slot, now);
    }
  }
}

void DevicePluginManager::RegisterAgain(Slot& slot, absl::Time now, bool at_once) {
  switch (slot.state) {
    case RegistrationState::kNotServing:
    case RegistrationState::kWatcherRoute:
      return;  // serving (in the Register route) schedules the first Register
    case RegistrationState::kInFlight:
    case RegistrationState::kInFlightStale:
      // The answer to the call in flight comes first; CompleteRegistrations then comes back here.
      if (at_once) slot.state = RegistrationState::kInFlightStale;
      return;
    case RegistrationState::kDue:
    case RegistrationState::kRegistered:
      break;
  }
  slot.state = RegistrationState::kDue;
  if (at_once) {
    slot.backoff = backoff_.initial;
    slot.next_attempt = now;
  } else {
    slot.next_attempt = now + slot.backoff;
    slot.backoff = std::min(slot.backoff * 2, backoff_.max);
  }
}

void DevicePluginManager::StartRegister(Slot& slot, absl::Time now) {
  slot.state = RegistrationState::kInFlight;
  ++slot.attempt;
  slot.opened_at_register = slot.server->StreamsOpened();
  const uint64_t call_id = ++register_call_count_;
  RegisterCall* call =
      register_calls_.emplace(call_id, std::make_unique<RegisterCall>()).first->second.get();
  // A fresh channel per attempt: a restarted kubelet is a new server, and a channel that failed
  // against the old one would add its own reconnect backoff to ours.
  call->channel = grpc::CreateChannel(absl::StrCat("unix:", kubelet_socket_),
                                      grpc::InsecureChannelCredentials());
  call->stub = v1beta1::Registration::NewStub(call->channel);
  call->request.set_version("v1beta1");
  call->request.set_endpoint(slot.server->socket_name());
  call->request.set_resource_name(slot.server->resource());
  *call->request.mutable_options() = slot.server->PluginOptions();
  call->context.set_deadline(absl::ToChronoTime(absl::Now() + kRegisterDeadline));  // real time
  {
    absl::MutexLock lock(&inbox_->mu);
    ++inbox_->in_flight;
  }
  std::shared_ptr<Inbox> inbox = inbox_;
  std::string resource = slot.server->resource();
  uint64_t attempt = slot.attempt;
  // The callback holds nothing of the call (see RegisterCall).
  call->stub->async()->Register(
      &call->context, &call->request, &call->response,
      [inbox, call_id, resource, attempt](grpc::Status status) {
        absl::MutexLock lock(&inbox->mu);
        inbox->done.push_back(Inbox::Done{call_id, resource, attempt, std::move(status)});
        inbox->Wake();
        --inbox->in_flight;  // last: Stop() may proceed once this is 0
      });
}

void DevicePluginManager::CompleteRegistrations(absl::Time now) {
  std::vector<Inbox::Done> done;
  {
    absl::MutexLock lock(&inbox_->mu);
    done.swap(inbox_->done);
  }
  for (Inbox::Done& result : done) {
    register_calls_.erase(result.call);  // its callback has run
    auto it = slots_.find(result.resource);
    if (it == slots_.end()) continue;
    Slot& slot = *it->second;
    if (result.attempt != slot.attempt) continue;
    const bool was_in_flight = slot.in_flight();  // not when serving failed meanwhile
    const bool stale = slot.state == RegistrationState::kInFlightStale;
    slot.server->RecordRegistration(result.status.ok());
    if (result.status.ok()) {
      slot.backoff = backoff_.initial;
      slot.last_error.clear();
      Log().info("device plugin registered resource={} endpoint={}", result.resource,
                 slot.server->socket_name());
      if (was_in_flight) slot.state = RegistrationState::kRegistered;
    } else {
      LogRegisterFailure(slot, result.resource, result.status);
      if (was_in_flight) slot.state = RegistrationState::kDue;
    }
    // A failure retries after the backoff; a reason that came while in flight, at once.
    if (was_in_flight && (stale || !result.status.ok())) RegisterAgain(slot, now, stale);
  }
}

void DevicePluginManager::LogRegisterFailure(Slot& slot, const std::string& resource,
                                             const grpc::Status& status) {
  std::string error = absl::StrCat("code ", static_cast<int>(status.error_code()), ": ",
                                   QuoteForLog(status.error_message()));
  // Once per change of state: the first failure after a success (or at start) is an error;
  // the retries that follow are counted in the metric and logged at debug only.
  if (slot.last_error.empty()) {
    slot.last_error = std::move(error);
    Log().warn(
        "device plugin registration failed; retrying with backoff resource={} "
        "kubelet_socket={} error=\"{}\"",
        resource, kubelet_socket_, slot.last_error);
  } else {
    Log().debug("device plugin registration retry failed resource={} error=\"{}\"", resource,
                error);
  }
}

absl::Time DevicePluginManager::NextDeadline(absl::Time now) const {
  absl::Time next = std::min(next_socket_check_, now + kSocketCheckInterval);
  for (const auto& [resource, slot] : slots_) {
    if (slot->state == RegistrationState::kDue) next = std::min(next, slot->next_attempt);
  }
  return next;
}

}  // namespace devscope
