#include "exporter/poller.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/guard.h"
#include "common/log.h"
#include "grpc/grpc.h"

namespace devscope {
namespace {

// Backoff caps. A kubelet that is away or slow is retried at most every 5 s so that it is found
// again quickly; throttling and oversized replies back off further (to 30 s) because each retry
// costs the kubelet (and every other client of its shared rate limit) a full List.
constexpr absl::Duration kFailureBackoffCap = absl::Seconds(5);
constexpr absl::Duration kHeavyBackoffCap = absl::Seconds(30);

// Get is probed with a pod name that is not a valid Kubernetes name, so it can never exist: a
// kubelet that serves Get answers "not found", one that does not answers Unimplemented or with
// its feature-gate error.
constexpr char kProbePodName[] = "_devscope-probe_";

constexpr absl::string_view kMethodNames[] = {"List", "GetAllocatableResources", "Get"};

NumaNodes ConvertTopology(const v1::TopologyInfo& topology) {
  NumaNodes nodes;
  nodes.reserve(topology.nodes_size());
  for (const v1::NUMANode& node : topology.nodes()) nodes.push_back(node.id());
  return nodes;
}

DeviceAssignment ConvertDevices(const v1::ContainerDevices& devices) {
  DeviceAssignment out;
  out.resource = devices.resource_name();
  out.device_ids.assign(devices.device_ids().begin(), devices.device_ids().end());
  if (devices.has_topology()) out.numa_nodes = ConvertTopology(devices.topology());
  return out;
}

MemoryAssignment ConvertMemory(const v1::ContainerMemory& memory) {
  MemoryAssignment out;
  out.memory_type = memory.memory_type();
  out.size_bytes = memory.size();
  if (memory.has_topology()) out.numa_nodes = ConvertTopology(memory.topology());
  return out;
}

std::vector<MemoryAssignment> ConvertMemoryList(
    const google::protobuf::RepeatedPtrField<v1::ContainerMemory>& memory) {
  std::vector<MemoryAssignment> out;
  out.reserve(memory.size());
  for (const v1::ContainerMemory& m : memory) out.push_back(ConvertMemory(m));
  return out;
}

ContainerResources ConvertContainer(const v1::ContainerResources& container) {
  ContainerResources out;
  out.name = container.name();
  out.devices.reserve(container.devices_size());
  for (const v1::ContainerDevices& d : container.devices())
    out.devices.push_back(ConvertDevices(d));
  out.exclusive_cpus.assign(container.cpu_ids().begin(), container.cpu_ids().end());
  out.memory = ConvertMemoryList(container.memory());
  for (const v1::DynamicResource& claim : container.dynamic_resources()) {
    for (const v1::ClaimResource& resource : claim.claim_resources()) {
      ClaimDevice device;
      device.claim_namespace = claim.claim_namespace();
      device.claim_name = claim.claim_name();
      device.driver = resource.driver_name();
      device.pool = resource.pool_name();
      device.device = resource.device_name();
      if (resource.has_share_id()) device.share_id = resource.share_id();
      for (const v1::CDIDevice& cdi : resource.cdi_devices()) {
        device.cdi_devices.push_back(cdi.name());
      }
      out.claim_devices.push_back(std::move(device));
    }
  }
  return out;
}

bool IsRateLimited(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
         absl::StrContains(status.error_message(), "rejected by rate limit");
}

}  // namespace

absl::string_view GrpcCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN";
  }
}

grpc::Status NormalizeReplyStatus(grpc::Status status) {
  if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED &&
      status.error_message() == "No message returned for unary request") {
    return grpc::Status(grpc::StatusCode::INTERNAL,
                        "the kubelet's reply did not parse as a pod-resources message");
  }
  return status;
}

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

absl::Duration PodResourcesCallDeadline(absl::Duration interval) {
  return std::clamp(2 * interval, absl::Seconds(1), absl::Seconds(10));
}

PodResources ConvertPod(const v1::PodResources& pod) {
  PodResources out;
  out.ns = pod.namespace_();
  out.name = pod.name();
  out.containers.reserve(pod.containers_size());
  for (const v1::ContainerResources& c : pod.containers()) {
    out.containers.push_back(ConvertContainer(c));
  }
  out.pod_cpus.assign(pod.cpu_ids().begin(), pod.cpu_ids().end());
  out.pod_memory = ConvertMemoryList(pod.memory());
  return out;
}

std::vector<PodResources> ConvertPods(const v1::ListPodResourcesResponse& response) {
  std::vector<PodResources> pods;
  pods.reserve(response.pod_resources_size());
  for (const v1::PodResources& pod : response.pod_resources()) pods.push_back(ConvertPod(pod));
  return pods;
}

AllocatableResources ConvertAllocatable(const v1::AllocatableResourcesResponse& response) {
  AllocatableResources out;
  out.devices.reserve(response.devices_size());
  for (const v1::ContainerDevices& d : response.devices()) out.devices.push_back(ConvertDevices(d));
  out.cpus.assign(response.cpu_ids().begin(), response.cpu_ids().end());
  out.memory = ConvertMemoryList(response.memory());
  return out;
}

PodResourcesPoller::PodResourcesPoller(PollerOptions options, prometheus::Registry& registry)
    : options_(std::move(options)),
      rng_(std::random_device{}()),
      // The names and labels below are constants that prometheus-cpp accepts, so Register and
      // Add cannot throw here.
      requests_family_(prometheus::BuildCounter()
                           .Name("devscope_pod_resources_requests_total")
                           .Help("Calls devscope made to the kubelet's pod-resources API, by "
                                 "method and gRPC status code.")
                           .Register(registry)),
      duration_family_(prometheus::BuildHistogram()
                           .Name("devscope_pod_resources_request_duration_seconds")
                           .Help("Duration of calls to the kubelet's pod-resources API.")
                           .Register(registry)),
      supported_family_(prometheus::BuildGauge()
                            .Name("devscope_pod_resources_method_supported")
                            .Help("1 when the kubelet serves the pod-resources method, 0 when it "
                                  "answered Unimplemented or that the method is disabled.")
                            .Register(registry)),
      up_gauge_(prometheus::BuildGauge()
                    .Name("devscope_pod_resources_up")
                    .Help("1 when the last List call to the kubelet's pod-resources API succeeded.")
                    .Register(registry)
                    .Add({})),
      last_success_gauge_(prometheus::BuildGauge()
                              .Name("devscope_pod_resources_last_success_timestamp_seconds")
                              .Help("Unix time of the last successful List call.")
                              .Register(registry)
                              .Add({})) {
  const prometheus::Histogram::BucketBoundaries buckets = {
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  for (int m = 0; m < kMethodCount; ++m) {
    duration_[m] = &duration_family_.Add({{"method", std::string(kMethodNames[m])}}, buckets);
  }
}

PodResourcesPoller::~PodResourcesPoller() { Stop(); }

void PodResourcesPoller::Start() {
  if (started_) return;
  started_ = true;
  Log().info("polling pod-resources socket={} interval={}", options_.socket_path,
             absl::FormatDuration(options_.interval));
  thread_ = std::thread([this] { Run(); });
}

void PodResourcesPoller::Stop() {
  {
    absl::MutexLock lock(&call_mu_);
    if (!stopping_) {
      stopping_ = true;
      stop_.Notify();
    }
    if (call_in_flight_ != nullptr) call_in_flight_->TryCancel();
  }
  if (thread_.joinable()) thread_.join();
}

void PodResourcesPoller::Run() {
  RecreateChannel();
  while (!stop_.HasBeenNotified()) {
    absl::Duration wait = options_.interval;
    // A throw costs this poll (logged); the next one runs after the interval.
    RunGuarded("pod-resources poll", [&] { wait = PollOnce(); }).IgnoreError();
    if (stop_.WaitForNotificationWithTimeout(wait)) break;
  }
}

void PodResourcesPoller::RecreateChannel() {
  channel_ = MakePodResourcesChannel(options_.socket_path, options_.max_message_size);
  stub_ = v1::PodResourcesLister::NewStub(channel_);
}

template <typename Request, typename Response, typename Fn>
grpc::Status PodResourcesPoller::Call(Method method, const Request& request, Response* response,
                                      Fn fn) {
  grpc::ClientContext context;
  context.set_deadline(
      absl::ToChronoTime(absl::Now() + PodResourcesCallDeadline(options_.interval)));
  {
    absl::MutexLock lock(&call_mu_);
    if (stopping_) return grpc::Status(grpc::StatusCode::CANCELLED, "poller stopping");
    call_in_flight_ = &context;
  }
  const absl::Time start = absl::Now();
  grpc::Status status = NormalizeReplyStatus(fn(stub_.get(), &context, request, response));
  const absl::Duration took = absl::Now() - start;
  {
    absl::MutexLock lock(&call_mu_);
    call_in_flight_ = nullptr;
  }
  duration_[method]->Observe(absl::ToDoubleSeconds(took));
  requests_family_
      .Add({{"method", std::string(kMethodNames[method])},
            {"code", std::string(GrpcCodeName(status.error_code()))}})
      .Increment();
  return status;
}

absl::Duration PodResourcesPoller::PollOnce() {
  v1::ListPodResourcesResponse list;
  const grpc::Status status =
      Call(kList, v1::ListPodResourcesRequest(), &list,
           [](v1::PodResourcesLister::Stub* stub, grpc::ClientContext* context,
              const v1::ListPodResourcesRequest& request, v1::ListPodResourcesResponse* response) {
             return stub->List(context, request, response);
           });
  if (stop_.HasBeenNotified()) return absl::ZeroDuration();
  const absl::Time now = absl::Now();

  if (status.ok()) {
    consecutive_failures_ = 0;
    SetSupport(kList, Support::kSupported, status);
    MaybeRefreshAllocatable(list, now);
    MaybeProbeGet(now);
    // Most polls return what the last one did. Keeping the published snapshot then keeps the
    // renderer's cached text valid, so a scrape after an unchanged poll costs a copy, not a render.
    std::string reply = list.SerializeAsString();
    if (store_.Version() == 0 || reply != last_reply_ ||
        published_allocatable_ != allocatable_generation_) {
      auto snapshot = std::make_shared<PodResourcesSnapshot>();
      snapshot->pods = ConvertPods(list);
      snapshot->allocatable = allocatable_;
      snapshot->list_time = now;
      store_.Publish(std::move(snapshot));
      last_reply_ = std::move(reply);
      published_allocatable_ = allocatable_generation_;
    }
    const int pod_count = list.pod_resources_size();
    MarkUp(now);
    if (!up_) Log().info("pod-resources up pods={}", pod_count);
    up_ = true;
    first_poll_done_.store(true, std::memory_order_release);
    return options_.interval;
  }

  ++consecutive_failures_;
  absl::Duration cap = kFailureBackoffCap;
  std::string reason;
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      // The kubelet is absent or restarting (its socket is removed and recreated). A new channel
      // reconnects on the next call instead of waiting out gRPC's reconnect backoff.
      reason = "kubelet pod-resources socket unreachable";
      RecreateChannel();
      break;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      cap = kHeavyBackoffCap;
      if (IsRateLimited(status)) {
        reason = "throttled by the kubelet's pod-resources rate limit; backing off";
      } else {
        reason = absl::StrCat("List reply larger than --pod-resources.max-message-size (",
                              options_.max_message_size,
                              " bytes); raise it. Serving the last good picture");
      }
      break;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      reason = absl::StrCat("kubelet did not answer List within ",
                            absl::FormatDuration(PodResourcesCallDeadline(options_.interval)));
      break;
    case grpc::StatusCode::UNIMPLEMENTED:
      cap = kHeavyBackoffCap;
      reason = "kubelet does not serve v1 List";
      SetSupport(kList, Support::kUnsupported, status);
      break;
    default:
      reason = "List failed";
      break;
  }
  MarkDown(status, reason);
  first_poll_done_.store(true, std::memory_order_release);

  // Doubling from the interval up to the cap (never below the interval), with +-20% jitter so that
  // clients that were throttled together do not retry together.
  absl::Duration wait = options_.interval * std::pow(2.0, std::min(consecutive_failures_ - 1, 20));
  wait = std::max(std::min(wait, cap), options_.interval);
  std::uniform_real_distribution<double> jitter(0.8, 1.2);
  return wait * jitter(rng_);
}

void PodResourcesPoller::MarkUp(absl::Time now) {
  up_gauge_.Set(1);
  last_success_gauge_.Set(absl::ToDoubleSeconds(now - absl::UnixEpoch()));
  last_failure_code_ = grpc::StatusCode::OK;
  ever_polled_ = true;
}

void PodResourcesPoller::MarkDown(const grpc::Status& status, absl::string_view reason) {
  up_gauge_.Set(0);
  // Once per state change: up -> down, the first failure, or a different kind of failure.
  if (up_ || !ever_polled_ || status.error_code() != last_failure_code_) {
    Log().warn("pod-resources down reason=\"{}\" code={} message=\"{}\" socket={}",
               std::string(reason), std::string(GrpcCodeName(status.error_code())),
               status.error_message(), options_.socket_path);
  }
  up_ = false;
  ever_polled_ = true;
  last_failure_code_ = status.error_code();
}

void PodResourcesPoller::SetSupport(Method method, Support support, const grpc::Status& status) {
  if (support_[method] == support) return;
  const bool was_known = support_[method] != Support::kUnknown;
  support_[method] = support;
  if (supported_[method] == nullptr) {
    supported_[method] = &supported_family_.Add({{"method", std::string(kMethodNames[method])}});
  }
  supported_[method]->Set(support == Support::kSupported ? 1 : 0);
  if (support == Support::kSupported) {
    if (was_known)
      Log().info("pod-resources method served again method={}", std::string(kMethodNames[method]));
  } else {
    Log().warn(
        "pod-resources method not served by the kubelet method={} code={} message=\"{}\" "
        "reprobe={}",
        std::string(kMethodNames[method]), std::string(GrpcCodeName(status.error_code())),
        status.error_message(), absl::FormatDuration(options_.unsupported_reprobe));
  }
}

void PodResourcesPoller::MaybeRefreshAllocatable(const v1::ListPodResourcesResponse& list,
                                                 absl::Time now) {
  const bool never = allocatable_attempt_ == absl::InfinitePast();
  const absl::Duration since_attempt = now - allocatable_attempt_;
  if (options_.last_device_change) {
    const absl::Time change = options_.last_device_change();
    if (change > device_change_seen_) {
      device_change_seen_ = change;
      allocatable_due_.clear();  // a later change restarts the schedule
      for (absl::Duration after : options_.allocatable_after_device_change) {
        allocatable_due_.push_back(change + after);
      }
    }
  }
  bool due = false;
  if (!allocatable_due_.empty() && now >= allocatable_due_.front() &&
      support_[kAllocatable] != Support::kUnsupported) {
    // Every refresh owed by now is paid by this one call.
    while (!allocatable_due_.empty() && now >= allocatable_due_.front()) {
      allocatable_due_.erase(allocatable_due_.begin());
    }
    due = true;
  } else if (never) {
    due = true;
  } else if (support_[kAllocatable] == Support::kUnsupported) {
    due = since_attempt >= options_.unsupported_reprobe;
  } else if (now - allocatable_success_ >= options_.allocatable_refresh &&
             since_attempt >= options_.allocatable_refresh) {
    due = true;
  } else if (since_attempt >= options_.allocatable_min_spacing) {
    if (!allocatable_.has_value()) {
      due = true;  // the last attempt failed for a passing reason
    } else {
      // A device the last answer did not name: new hardware, or a plugin that came back.
      for (const v1::PodResources& pod : list.pod_resources()) {
        for (const v1::ContainerResources& c : pod.containers()) {
          for (const v1::ContainerDevices& d : c.devices()) {
            auto it = allocatable_known_.find(d.resource_name());
            for (const std::string& id : d.device_ids()) {
              if (it == allocatable_known_.end() || !it->second.contains(id)) {
                due = true;
                break;
              }
            }
            if (due) break;
          }
          if (due) break;
        }
        if (due) break;
      }
    }
  }
  if (!due) return;

  allocatable_attempt_ = now;
  v1::AllocatableResourcesResponse response;
  const grpc::Status status = Call(
      kAllocatable, v1::AllocatableResourcesRequest(), &response,
      [](v1::PodResourcesLister::Stub* stub, grpc::ClientContext* context,
         const v1::AllocatableResourcesRequest& request, v1::AllocatableResourcesResponse* out) {
        return stub->GetAllocatableResources(context, request, out);
      });
  if (status.ok()) {
    SetSupport(kAllocatable, Support::kSupported, status);
    allocatable_ = ConvertAllocatable(response);
    ++allocatable_generation_;
    allocatable_success_ = now;
    allocatable_known_.clear();
    for (const DeviceAssignment& d : allocatable_->devices) {
      auto& ids = allocatable_known_[d.resource];
      ids.insert(d.device_ids.begin(), d.device_ids.end());
    }
    return;
  }
  switch (status.error_code()) {
    case grpc::StatusCode::UNIMPLEMENTED:
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::FAILED_PRECONDITION:
      // Unimplemented, or the kubelet's "GetAllocatableResources disabled" (gate off before 1.28).
      SetSupport(kAllocatable, Support::kUnsupported, status);
      allocatable_.reset();
      ++allocatable_generation_;
      allocatable_known_.clear();
      break;
    default:
      // Passing (unreachable, throttled, slow): keep the last answer, retry after the spacing.
      Log().debug("GetAllocatableResources failed code={} message=\"{}\"",
                  std::string(GrpcCodeName(status.error_code())), status.error_message());
      break;
  }
}

void PodResourcesPoller::MaybeProbeGet(absl::Time now) {
  const absl::Duration every = support_[kGet] == Support::kUnknown
                                   ? options_.allocatable_min_spacing
                                   : options_.unsupported_reprobe;
  if (get_probe_ != absl::InfinitePast() && now - get_probe_ < every) return;
  get_probe_ = now;
  v1::GetPodResourcesRequest request;
  request.set_pod_namespace(kProbePodName);
  request.set_pod_name(kProbePodName);
  v1::GetPodResourcesResponse response;
  const grpc::Status status =
      Call(kGet, request, &response,
           [](v1::PodResourcesLister::Stub* stub, grpc::ClientContext* context,
              const v1::GetPodResourcesRequest& req,
              v1::GetPodResourcesResponse* out) { return stub->Get(context, req, out); });
  switch (status.error_code()) {
    case grpc::StatusCode::OK:
      SetSupport(kGet, Support::kSupported, status);
      break;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      break;  // passing; the next probe decides
    default:
      // A kubelet that serves Get says the probe pod was not found (code Unknown, or NotFound);
      // any other answer means it does not serve Get.
      if (absl::StrContains(status.error_message(), "not found") &&
          status.error_code() != grpc::StatusCode::UNIMPLEMENTED) {
        SetSupport(kGet, Support::kSupported, status);
      } else {
        SetSupport(kGet, Support::kUnsupported, status);
      }
      break;
  }
}

}  // namespace devscope
