#include "kubelet/poller.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/guard.h"
#include "common/log.h"
#include "google/protobuf/arena.h"
#include "kubelet/convert.h"
#include "kubelet/grpc_pod_resources_client.h"

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

bool IsRateLimited(const absl::Status& status) {
  return absl::IsResourceExhausted(status) &&
         absl::StrContains(status.message(), "rejected by rate limit");
}

}  // namespace

void DeclareOptions(OptionDeclarer& d, PollerOptions& o) {
  d.Flag("kubelet.pod-resources-socket", o.socket_path, "The kubelet's pod-resources socket")
      .Group("Kubelet")
      .ParentMustBeDirectory();
  // The kubelet's rate limit (100 QPS, burst 10) is shared by every client on the node; polling
  // faster than 10 times a second would take a large share of it.
  d.Flag("pod-resources.interval", o.interval, "How often List is polled (at least 100ms)")
      .Group("Kubelet")
      .Check([&o] {
        return AtLeast(o.interval, absl::Milliseconds(100), "the kubelet's rate limit is shared");
      });
  d.Flag("pod-resources.max-message-size", ByteSizeValue(o.max_message_size),
         "gRPC receive limit for pod-resources replies")
      .Group("Kubelet")
      .Check([&o] {
        return o.max_message_size <= (1ULL << 31) - 1
                   ? absl::OkStatus()
                   : absl::InvalidArgumentError("gRPC accepts at most 2GiB - 1 byte");
      });
}

absl::Duration PodResourcesCallDeadline(absl::Duration interval) {
  return std::clamp(2 * interval, absl::Seconds(1), absl::Seconds(10));
}

PodResourcesPoller::PodResourcesPoller(PollerOptions options, prometheus::Registry& registry)
    : PodResourcesPoller(options, registry,
                         std::make_unique<GrpcPodResourcesClient>(GrpcPodResourcesClient::Options{
                             options.socket_path, options.max_message_size,
                             PodResourcesCallDeadline(options.interval)})) {}

PodResourcesPoller::PodResourcesPoller(PollerOptions options, prometheus::Registry& registry,
                                       std::unique_ptr<PodResourcesClient> client, Clock& clock)
    : options_(std::move(options)),
      client_(std::move(client)),
      clock_(clock),
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
  for (int m = 0; m < kPodResourcesMethodCount; ++m) {
    const std::string method(MethodName(static_cast<PodResourcesMethod>(m)));
    duration_[m] = &duration_family_.Add({{"method", method}}, buckets);
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
  absl::call_once(stop_once_, [this] {
    stop_.Notify();
    // Cancels a call in flight rather than waiting out its deadline; later calls fail at once.
    client_->Shutdown();
  });
  if (thread_.joinable()) thread_.join();
}

void PodResourcesPoller::Run() {
  while (!stop_.HasBeenNotified()) {
    absl::Duration wait = options_.interval;
    // A throw costs this poll (logged); the next one runs after the interval.
    RunGuarded("pod-resources poll", [&] { wait = PollOnce(); }).IgnoreError();
    if (clock_.WaitUntil(stop_, clock_.Now() + wait)) break;
  }
}

template <typename Call>
absl::Status PodResourcesPoller::Timed(PodResourcesMethod method, Call call) {
  // A metric's duration: real time, whatever the clock that decides.
  const absl::Time start = absl::Now();
  absl::Status status = call();
  const absl::Duration took = absl::Now() - start;
  const int m = static_cast<int>(method);
  duration_[m]->Observe(absl::ToDoubleSeconds(took));
  requests_family_
      .Add({{"method", std::string(MethodName(method))},
            {"code", absl::StatusCodeToString(status.code())}})
      .Increment();
  NoteSupport(method, status);
  return status;
}

bool PodResourcesPoller::SocketReplaced() {
  struct stat st;
  if (::stat(options_.socket_path.c_str(), &st) != 0) return false;  // List will tell
  const SocketIdentity now{st.st_dev, st.st_ino, st.st_ctim.tv_sec, st.st_ctim.tv_nsec};
  const bool replaced = socket_.has_value() && !(*socket_ == now);
  socket_ = now;
  return replaced;
}

void PodResourcesPoller::ReprobeMethods() {
  // The next AllocatableDue and MaybeProbeGet ask at once, as at start.
  allocatable_attempt_ = absl::InfinitePast();
  get_probe_ = absl::InfinitePast();
}

absl::Duration PodResourcesPoller::PollOnce() {
  // A kubelet that restarted may serve other methods (an upgrade, a feature gate switched): it
  // replaces its socket, or was unreachable for a while. What it serves is asked again at once.
  if (SocketReplaced()) kubelet_changed_ = true;
  // The reply (thousands of messages and strings at a few hundred pods) is parsed into an arena:
  // a few large blocks, freed at once, instead of an allocation and a free for each.
  google::protobuf::ArenaOptions arena_options;
  arena_options.start_block_size = 64 << 10;
  arena_options.max_block_size = 1 << 20;
  google::protobuf::Arena arena(arena_options);
  v1::ListPodResourcesResponse& list =
      *google::protobuf::Arena::CreateMessage<v1::ListPodResourcesResponse>(&arena);
  const absl::Status status =
      Timed(PodResourcesMethod::kList, [&] { return client_->List(&list); });
  if (stop_.HasBeenNotified()) return absl::ZeroDuration();
  const absl::Time now = clock_.Now();
  if (!status.ok()) return OnListFailure(status);

  consecutive_failures_ = 0;
  if (kubelet_changed_) {
    kubelet_changed_ = false;
    ReprobeMethods();
  }
  MaybeRefreshAllocatable(list, now);
  MaybeProbeGet(now);
  // Most polls return what the last one did. Keeping the published snapshot then keeps the
  // renderer's cached text valid, so a scrape after an unchanged poll costs a copy, not a render.
  // The comparison serialises into a buffer kept between polls: no allocation once it is grown.
  SortListReply(list);
  list.SerializeToString(&reply_);
  if (store_.Version() == 0 || reply_ != last_reply_ ||
      published_allocatable_ != allocatable_generation_) {
    auto snapshot = std::make_shared<PodResourcesSnapshot>();
    snapshot->pods = ConvertPods(list);
    snapshot->allocatable = allocatable_;
    snapshot->list_time = now;
    store_.Publish(std::move(snapshot));
    std::swap(last_reply_, reply_);
    published_allocatable_ = allocatable_generation_;
  }
  MarkUp(now);
  if (!up_) Log().info("pod-resources up pods={}", list.pod_resources_size());
  up_ = true;
  first_poll_done_.store(true, std::memory_order_release);
  return options_.interval;
}

absl::Duration PodResourcesPoller::OnListFailure(const absl::Status& status) {
  ++consecutive_failures_;
  absl::Duration cap = kFailureBackoffCap;
  std::string reason;
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
      // The kubelet is absent or restarting (its socket is removed and recreated). A new
      // connection is made on the next call instead of waiting out gRPC's reconnect backoff.
      reason = "kubelet pod-resources socket unreachable";
      kubelet_changed_ = true;
      client_->Reconnect();
      break;
    case absl::StatusCode::kResourceExhausted:
      cap = kHeavyBackoffCap;
      if (IsRateLimited(status)) {
        reason = "throttled by the kubelet's pod-resources rate limit; backing off";
      } else {
        reason = absl::StrCat("List reply larger than --pod-resources.max-message-size (",
                              options_.max_message_size,
                              " bytes); raise it. Serving the last good picture");
      }
      break;
    case absl::StatusCode::kDeadlineExceeded:
      reason = absl::StrCat("kubelet did not answer List within ",
                            absl::FormatDuration(PodResourcesCallDeadline(options_.interval)));
      break;
    case absl::StatusCode::kUnimplemented:
      cap = kHeavyBackoffCap;
      reason = "kubelet does not serve v1 List";
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
  last_failure_code_ = absl::StatusCode::kOk;
  ever_polled_ = true;
}

void PodResourcesPoller::MarkDown(const absl::Status& status, absl::string_view reason) {
  up_gauge_.Set(0);
  // Once per state change: up -> down, the first failure, or a different kind of failure.
  if (up_ || !ever_polled_ || status.code() != last_failure_code_) {
    Log().warn("pod-resources down reason=\"{}\" code={} message={} socket={}", std::string(reason),
               absl::StatusCodeToString(status.code()), QuoteForLog(status.message()),
               options_.socket_path);
  }
  up_ = false;
  ever_polled_ = true;
  last_failure_code_ = status.code();
}

void PodResourcesPoller::NoteSupport(PodResourcesMethod method, const absl::Status& status) {
  const MethodSupport support = SupportFromStatus(method, status);
  const int m = static_cast<int>(method);
  if (support == MethodSupport::kUnknown || support_[m] == support) return;
  const bool was_known = support_[m] != MethodSupport::kUnknown;
  support_[m] = support;
  if (supported_[m] == nullptr) {
    supported_[m] = &supported_family_.Add({{"method", std::string(MethodName(method))}});
  }
  supported_[m]->Set(support == MethodSupport::kServed ? 1 : 0);
  if (support == MethodSupport::kServed) {
    if (was_known) {
      Log().info("pod-resources method served again method={}", std::string(MethodName(method)));
    }
    return;
  }
  Log().warn(
      "pod-resources method not served by the kubelet method={} code={} message={} "
      "reprobe={}",
      std::string(MethodName(method)), absl::StatusCodeToString(status.code()),
      QuoteForLog(status.message()), absl::FormatDuration(options_.unsupported_reprobe));
}

bool PodResourcesPoller::Served(PodResourcesMethod method) const {
  return support_[static_cast<int>(method)] != MethodSupport::kNotServed;
}

bool PodResourcesPoller::NamesUnknownDevice(const v1::ListPodResourcesResponse& list) const {
  for (const v1::PodResources& pod : list.pod_resources()) {
    for (const v1::ContainerResources& c : pod.containers()) {
      for (const v1::ContainerDevices& d : c.devices()) {
        auto it = allocatable_known_.find(d.resource_name());
        for (const std::string& id : d.device_ids()) {
          if (it == allocatable_known_.end() || !it->second.contains(id)) return true;
        }
      }
    }
  }
  return false;
}

bool PodResourcesPoller::AllocatableDue(const v1::ListPodResourcesResponse& list, absl::Time now) {
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
  const bool served = Served(PodResourcesMethod::kGetAllocatableResources);
  if (!allocatable_due_.empty() && now >= allocatable_due_.front() && served) {
    // Every refresh owed by now is paid by this one call.
    while (!allocatable_due_.empty() && now >= allocatable_due_.front()) {
      allocatable_due_.erase(allocatable_due_.begin());
    }
    return true;
  }
  if (allocatable_attempt_ == absl::InfinitePast()) return true;  // never asked
  const absl::Duration since_attempt = now - allocatable_attempt_;
  if (!served) return since_attempt >= options_.unsupported_reprobe;
  if (now - allocatable_success_ >= options_.allocatable_refresh &&
      since_attempt >= options_.allocatable_refresh) {
    return true;
  }
  if (since_attempt < options_.allocatable_min_spacing) return false;
  // The last attempt failed for a passing reason, or a List names a device the last answer did
  // not: new hardware, or a plugin that came back.
  return !allocatable_.has_value() || NamesUnknownDevice(list);
}

void PodResourcesPoller::MaybeRefreshAllocatable(const v1::ListPodResourcesResponse& list,
                                                 absl::Time now) {
  if (!AllocatableDue(list, now)) return;
  allocatable_attempt_ = now;
  v1::AllocatableResourcesResponse response;
  const absl::Status status = Timed(PodResourcesMethod::kGetAllocatableResources,
                                    [&] { return client_->GetAllocatableResources(&response); });
  if (status.ok()) {
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
  if (SupportFromStatus(PodResourcesMethod::kGetAllocatableResources, status) ==
      MethodSupport::kNotServed) {
    allocatable_.reset();
    ++allocatable_generation_;
    allocatable_known_.clear();
    return;
  }
  // Passing (unreachable, throttled, slow): keep the last answer, retry after the spacing.
  Log().debug("GetAllocatableResources failed code={} message={}",
              absl::StatusCodeToString(status.code()), QuoteForLog(status.message()));
}

void PodResourcesPoller::MaybeProbeGet(absl::Time now) {
  const absl::Duration every =
      support_[static_cast<int>(PodResourcesMethod::kGet)] == MethodSupport::kUnknown
          ? options_.allocatable_min_spacing
          : options_.unsupported_reprobe;
  if (get_probe_ != absl::InfinitePast() && now - get_probe_ < every) return;
  get_probe_ = now;
  v1::GetPodResourcesResponse response;
  Timed(PodResourcesMethod::kGet, [&] {
    return client_->Get(kProbePodName, kProbePodName, &response);
  }).IgnoreError();  // what it says about Get is all the probe is for
}

}  // namespace devscope
