// The pod-resources poller: one thread that polls the kubelet's v1.PodResourcesLister over its unix
// socket and publishes an immutable PodResourcesSnapshot after every successful List. Scrapes and
// `devscope pod` never wait on the kubelet: they read the last published picture.
//
// Thread-safety: Start/Stop are called by the owner; store(), first_poll_done() and the metrics in
// the registry may be read from any thread.
#ifndef DEVSCOPE_EXPORTER_POLLER_H_
#define DEVSCOPE_EXPORTER_POLLER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/snapshot_store.h"
#include "exporter/pod_resources.h"
#include "grpcpp/grpcpp.h"
#include "podresources/v1/api.grpc.pb.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace devscope {

struct PollerOptions {
  std::string socket_path;                     // --kubelet.pod-resources-socket
  absl::Duration interval = absl::Seconds(1);  // --pod-resources.interval
  uint64_t max_message_size = 64 << 20;        // --pod-resources.max-message-size
  // How often GetAllocatableResources is asked again although nothing suggests a change.
  absl::Duration allocatable_refresh = absl::Minutes(5);
  // The least time between two GetAllocatableResources calls prompted by a List that shows a device
  // the last allocatable answer did not name. A device of a resource that is not allocatable at all
  // (an unhealthy device still held by a pod) would otherwise trigger a call on every poll.
  absl::Duration allocatable_min_spacing = absl::Seconds(30);
  // How often a method found unsupported (Unimplemented, or switched off by a feature gate) is
  // probed again: a kubelet upgrade can add it.
  absl::Duration unsupported_reprobe = absl::Minutes(5);
  // When a collector last saw a device appear, vanish or change health (InfinitePast: never;
  // none: null). The kubelet's allocatable devices are its healthy ones, so each change asks
  // GetAllocatableResources again at each of these delays after it: time for the device plugin's
  // ListAndWatch update to reach the kubelet (devscope's own plugin takes milliseconds; a vendor
  // plugin may take seconds). Looked at once per poll: the metrics follow within about an
  // interval after the first delay.
  std::function<absl::Time()> last_device_change;
  std::vector<absl::Duration> allocatable_after_device_change = {absl::Milliseconds(500),
                                                                  absl::Seconds(10)};
};

// The canonical gRPC code name, as the metrics label it: OK, UNAVAILABLE, RESOURCE_EXHAUSTED, ...
absl::string_view GrpcCodeName(grpc::StatusCode code);

// gRPC C++'s blocking unary call reports a reply that does not parse as UNIMPLEMENTED "No message
// returned for unary request" (client_unary_call.h). That is a garbled reply, not a method the
// kubelet lacks: this turns it into INTERNAL, the code other gRPC implementations give it.
grpc::Status NormalizeReplyStatus(grpc::Status status);

// A channel to "unix://" + socket_path with insecure credentials and `max_message_size` as the
// receive limit. Its reconnect backoff is short and its subchannel private, so that a fresh channel
// made after a kubelet restart connects at once.
std::shared_ptr<grpc::Channel> MakePodResourcesChannel(const std::string& socket_path,
                                                       uint64_t max_message_size);

// The per-call deadline for a poll every `interval`: twice the interval, at least 1 s (a List of
// tens of MiB on a loaded node takes hundreds of ms) and at most 10 s (a hung kubelet is noticed
// and reported while the last picture keeps being served).
absl::Duration PodResourcesCallDeadline(absl::Duration interval);

// Conversions from the wire messages into the snapshot's types (all fields, nothing dropped).
PodResources ConvertPod(const v1::PodResources& pod);
std::vector<PodResources> ConvertPods(const v1::ListPodResourcesResponse& response);
AllocatableResources ConvertAllocatable(const v1::AllocatableResourcesResponse& response);

class PodResourcesPoller {
 public:
  PodResourcesPoller(PollerOptions options, prometheus::Registry& registry);
  ~PodResourcesPoller();
  PodResourcesPoller(const PodResourcesPoller&) = delete;
  PodResourcesPoller& operator=(const PodResourcesPoller&) = delete;

  // Starts the polling thread; returns immediately. Call once.
  void Start();
  // Stops polling (cancelling a call in flight) and joins the thread. Idempotent.
  void Stop();

  const SnapshotStore<PodResourcesSnapshot>& store() const { return store_; }
  // True once a first List attempt has finished, successfully or not (for /readyz).
  bool first_poll_done() const { return first_poll_done_.load(std::memory_order_acquire); }

 private:
  // Whether the kubelet serves a method: not yet known, served, or not (Unimplemented/gate off).
  enum class Support { kUnknown, kSupported, kUnsupported };
  enum Method { kList = 0, kAllocatable = 1, kGet = 2, kMethodCount = 3 };

  void Run();
  // One poll; returns how long to wait before the next.
  absl::Duration PollOnce();
  void MaybeRefreshAllocatable(const v1::ListPodResourcesResponse& list, absl::Time now);
  void MaybeProbeGet(absl::Time now);

  // Makes one unary call with the deadline and cancellation hook, and records its metrics.
  template <typename Request, typename Response, typename Fn>
  grpc::Status Call(Method method, const Request& request, Response* response, Fn fn);

  void RecreateChannel();
  void MarkUp(absl::Time now);
  void MarkDown(const grpc::Status& status, absl::string_view reason);
  void SetSupport(Method method, Support support, const grpc::Status& status);

  const PollerOptions options_;
  SnapshotStore<PodResourcesSnapshot> store_;
  std::atomic<bool> first_poll_done_{false};

  // Owned by the polling thread only.
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::PodResourcesLister::Stub> stub_;
  bool up_ = false;
  bool ever_polled_ = false;
  grpc::StatusCode last_failure_code_ = grpc::StatusCode::OK;
  int consecutive_failures_ = 0;
  Support support_[kMethodCount] = {Support::kUnknown, Support::kUnknown, Support::kUnknown};
  std::optional<AllocatableResources> allocatable_;
  uint64_t allocatable_generation_ = 0;  // counts changes of allocatable_
  // The last List reply published (serialised) and the allocatable generation published with it.
  std::string last_reply_;
  uint64_t published_allocatable_ = 0;
  // resource -> device IDs of the last allocatable answer, to spot devices it did not name.
  absl::flat_hash_map<std::string, absl::flat_hash_set<std::string>> allocatable_known_;
  absl::Time allocatable_success_ = absl::InfinitePast();
  absl::Time allocatable_attempt_ = absl::InfinitePast();
  absl::Time device_change_seen_ = absl::InfinitePast();
  std::vector<absl::Time> allocatable_due_;  // refreshes owed to device changes, earliest first
  absl::Time get_probe_ = absl::InfinitePast();
  std::mt19937_64 rng_;  // jitter for backoff

  // The call in flight, so that Stop can cancel it instead of waiting for its deadline.
  absl::Mutex call_mu_;
  grpc::ClientContext* call_in_flight_ ABSL_GUARDED_BY(call_mu_) = nullptr;
  bool stopping_ ABSL_GUARDED_BY(call_mu_) = false;

  absl::Notification stop_;
  std::thread thread_;
  bool started_ = false;  // owner's thread only

  // Self-metrics (prometheus-cpp metric objects are thread-safe).
  prometheus::Family<prometheus::Counter>& requests_family_;
  prometheus::Family<prometheus::Histogram>& duration_family_;
  prometheus::Family<prometheus::Gauge>& supported_family_;
  prometheus::Gauge& up_gauge_;
  prometheus::Gauge& last_success_gauge_;
  prometheus::Histogram* duration_[kMethodCount];
  prometheus::Gauge* supported_[kMethodCount] = {nullptr, nullptr, nullptr};
};

}  // namespace devscope

#endif  // DEVSCOPE_EXPORTER_POLLER_H_
