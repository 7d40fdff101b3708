#include "kubelet/process_attribution.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "kubelet/process_cgroup.h"

namespace devscope {
namespace {

// The least time between two lists prompted by a process of a container the last list lacked
// (one that started since, or one the runtime will never know: a container of another runtime).
constexpr absl::Duration kUnknownContainerRelist = absl::Seconds(1);

}  // namespace

void DeclareOptions(OptionDeclarer& d, ProcessAttributionOptions& o) {
  d.Flag("path.procfs", o.procfs,
         "The host's /proc, where a process's cgroup names its container (the chart mounts it at "
         "/host/proc)")
      .Group("Paths");
  d.Flag("container-runtime.socket", o.socket_path,
         "The container runtime's CRI socket, asked which pod and container each process that "
         "uses a device belongs to (ListContainers only); empty: no per-process attribution "
         "(CRI-O: /var/run/crio/crio.sock)")
      .Group("Container runtime")
      .ParentMustBeDirectory();
  d.Flag("container-runtime.interval", o.interval,
         "How often the runtime's containers are listed (also when a process names a container "
         "the last list lacked, at most once a second)")
      .Group("Container runtime")
      .Check(
          [&o] { return AtLeast(o.interval, absl::Seconds(1), "the runtime serves the kubelet"); });
  d.Flag("container-runtime.timeout", o.timeout,
         "How long one ListContainers may take; a runtime slower than that turns per-process "
         "attribution off until it answers in time")
      .Group("Container runtime")
      .Check([&o] { return AtLeast(o.timeout, absl::Milliseconds(10), "a call needs time"); });
}

ProcessAttributor::ProcessAttributor(ProcessAttributionOptions options,
                                     const SnapshotStore<DeviceSnapshot>& devices,
                                     prometheus::Registry& registry, const Clock& clock)
    : options_(std::move(options)),
      devices_(devices),
      clock_(clock),
      client_(options_.socket_path.empty()
                  ? nullptr
                  : NewGrpcContainerRuntimeClient(options_.socket_path, options_.max_message_size)),
      up_gauge_(&prometheus::BuildGauge()
                     .Name("devscope_process_attribution_up")
                     .Help("1 when the container runtime answered its last ListContainers in time: "
                           "the processes using devices are attributed to their containers "
                           "(devscope_device_holder_* series); 0 while it does not.")
                     .Register(registry)
                     .Add({})) {}

ProcessAttributor::~ProcessAttributor() { Stop(); }

void ProcessAttributor::Start() {
  if (client_ == nullptr) {
    Log().info("attribution: no container runtime socket given: per-process attribution off");
    store_.Publish(std::make_shared<ProcessAttribution>());
    return;
  }
  thread_ = std::thread([this] { Run(); });
}

void ProcessAttributor::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (client_ != nullptr) client_->Shutdown();
  if (thread_.joinable()) thread_.join();
}

void ProcessAttributor::Run() {
  const auto subscription = devices_.Subscribe([this] {
    absl::MutexLock lock(&mu_);
    devices_changed_ = true;
  });
  absl::Time next_list = absl::InfinitePast();
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      const auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stop_ || devices_changed_;
      };
      mu_.AwaitWithTimeout(absl::Condition(&woken), clock_.PollTimeout(next_list));
      if (stop_) return;
      if (!devices_changed_ && clock_.Now() < next_list) continue;
      devices_changed_ = false;
    }
    if (clock_.Now() >= next_list) {
      unlisted_.clear();
      ListContainers();
      next_list = clock_.Now() + options_.interval;
    }
    Attribute(devices_.Current());
  }
}

bool ProcessAttributor::ListContainers() {
  absl::StatusOr<std::vector<RuntimeContainer>> listed = client_->ListContainers(options_.timeout);
  listed_ = clock_.Now();
  if (!listed.ok()) {
    if (!reported_down_) {
      reported_down_ = true;
      Log().warn(
          "attribution: the container runtime at {} did not answer ListContainers ({}): "
          "per-process attribution is off until it does",
          options_.socket_path, listed.status().ToString());
    }
    up_ = false;
    by_id_.clear();
    up_gauge_->Set(0);
    return false;
  }
  reported_down_ = false;
  if (!up_) {
    Log().info(
        "attribution: the container runtime at {} lists {} containers: per-process "
        "attribution is on",
        options_.socket_path, listed->size());
  }
  up_ = true;
  up_gauge_->Set(1);
  by_id_.clear();
  for (RuntimeContainer& c : *listed) {
    by_id_[c.id] = ContainerName{std::move(c.ns), std::move(c.pod), std::move(c.container)};
  }
  return true;
}

void ProcessAttributor::ResolveUnknown(const std::vector<std::pair<uint32_t, std::string>>& unknown,
                                       ProcessAttribution& out) {
  // A container that started since the last list: list again, at most once a second, and not
  // for one that a list made after it was seen lacked too (a container of another runtime).
  const bool new_unknown = std::any_of(unknown.begin(), unknown.end(), [this](const auto& u) {
    return !unlisted_.contains(u.second);
  });
  if (new_unknown && clock_.Now() - listed_ >= kUnknownContainerRelist && ListContainers()) {
    for (const auto& [pid, id] : unknown) {
      if (auto known = by_id_.find(id); known != by_id_.end()) {
        out.containers[pid] = known->second;
      } else {
        unlisted_.insert(id);
      }
    }
  }
  for (const auto& [pid, id] : unknown) {
    if (out.containers.contains(pid)) continue;
    warn_.Warn(absl::StrCat(pid), absl::StrCat("pid=", pid, " container=", id,
                                               " is not a container the runtime lists: its share "
                                               "of the device is unattributed"));
  }
}

void ProcessAttributor::Attribute(std::shared_ptr<const DeviceSnapshot> devices) {
  auto out = std::make_shared<ProcessAttribution>();
  out->devices = devices;
  if (devices != nullptr && up_) {
    // PID -> container ID, for processes whose container the last list lacked.
    std::vector<std::pair<uint32_t, std::string>> unknown;
    for (const CollectorReport& collector : devices->collectors) {
      for (const DeviceReport& device : collector.devices) {
        for (const DeviceProcess& process : device.processes) {
          const uint32_t pid = process.pid;
          if (out->containers.contains(pid)) continue;  // on two devices
          absl::StatusOr<std::optional<ProcessCgroup>> cgroup =
              ReadProcessCgroup(options_.procfs, pid);
          const std::string key = absl::StrCat(pid);
          if (!cgroup.ok() || !cgroup->has_value()) {
            warn_.Warn(
                key, absl::StrCat("pid=", pid, " device=", device.info.id, " ",
                                  cgroup.ok() ? "runs in no container" : cgroup.status().ToString(),
                                  ": its share of the device is unattributed"));
            continue;
          }
          auto known = by_id_.find((*cgroup)->container_id);
          if (known != by_id_.end()) {
            out->containers[pid] = known->second;
          } else {
            unknown.emplace_back(pid, (*cgroup)->container_id);
          }
        }
      }
    }
    ResolveUnknown(unknown, *out);
  }
  out->up = up_;
  warn_.ForgetAbsent();
  store_.Publish(std::move(out));
}

}  // namespace devscope
