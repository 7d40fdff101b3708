// The pod-resources poller: one thread that polls the kubelet's v1.PodResourcesLister (through a
// PodResourcesClient) and publishes an immutable PodResourcesSnapshot after every successful List.
// Scrapes and `devscope pod` never wait on the kubelet: they read the last published picture.
//
// Thread-safety: Start/Stop are called by the owner; store(), first_poll_done() and the metrics in
// the registry may be read from any thread.
#ifndef DEVSCOPE_KUBELET_POLLER_H_
#define DEVSCOPE_KUBELET_POLLER_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/call_once.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/options.h"
#include "common/snapshot_store.h"
#include "kubelet/pod_resources.h"
#include "kubelet/pod_resources_client.h"
#include "podresources/v1/api.pb.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace devscope {

struct PollerOptions {
  // --kubelet.pod-resources-socket
  std::string socket_path = "/var/lib/kubelet/pod-resources/kubelet.sock";
  absl::Duration interval = absl::Seconds(1);  // --pod-resources.interval
  uint64_t max_message_size = 64 << 20;        // --pod-resources.max-message-size
  // How often GetAllocatableResources is asked again although nothing suggests a change.
  absl::Duration allocatable_refresh = absl::Minutes(5);
  // The least time between two GetAllocatableResources calls prompted by a List that shows a device
  // the last allocatable answer did not name. A device of a resource that is not allocatable at all
  // (an unhealthy device still held by a pod) would otherwise trigger a call on every poll.
  absl::Duration allocatable_min_spacing = absl::Seconds(30);
  // How often a method found unsupported (Unimplemented, or switched off by a feature gate) is
  // probed again, and a served Get probed to see it is still served. A kubelet that restarts
  // (replacing its socket) or comes back after being unreachable is asked at once: this is only
  // for a change no restart announced.
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

// The flags above (the rest are fixed, or set by the agent).
void DeclareOptions(OptionDeclarer& d, PollerOptions& o);

// The per-call deadline for a poll every `interval`: twice the interval, at least 1 s (a List of
// tens of MiB on a loaded node takes hundreds of ms) and at most 10 s (a hung kubelet is noticed
// and reported while the last picture keeps being served).
absl::Duration PodResourcesCallDeadline(absl::Duration interval);

class PodResourcesPoller {
 public:
  // Polls through a GrpcPodResourcesClient for options.socket_path.
  PodResourcesPoller(PollerOptions options, prometheus::Registry& registry);
  // Polls through `client`, timed by `clock` (fakes in tests). `clock` must outlive the poller;
  // options.last_device_change must answer on the same clock.
  PodResourcesPoller(PollerOptions options, prometheus::Registry& registry,
                     std::unique_ptr<PodResourcesClient> client, Clock& clock = Clock::Real());
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
  void Run();
  // One poll; returns how long to wait before the next.
  absl::Duration PollOnce();
  // Logs and counts a failed List; returns the backoff before the next poll.
  absl::Duration OnListFailure(const absl::Status& status);
  bool AllocatableDue(const v1::ListPodResourcesResponse& list, absl::Time now);
  bool NamesUnknownDevice(const v1::ListPodResourcesResponse& list) const;
  void MaybeRefreshAllocatable(const v1::ListPodResourcesResponse& list, absl::Time now);
  void MaybeProbeGet(absl::Time now);

  // Makes one call through the client, records its metrics and what it says about support.
  template <typename Call>
  absl::Status Timed(PodResourcesMethod method, Call call);

  // Whether the socket file is another one than at the last call (a kubelet restart recreates
  // it). False when it cannot be looked at.
  bool SocketReplaced();
  // Makes GetAllocatableResources and the Get probe due at once.
  void ReprobeMethods();

  void MarkUp(absl::Time now);
  void MarkDown(const absl::Status& status, absl::string_view reason);
  void NoteSupport(PodResourcesMethod method, const absl::Status& status);
  // False only once the kubelet said it does not serve `method` (true while unknown).
  bool Served(PodResourcesMethod method) const;

  const PollerOptions options_;
  const std::unique_ptr<PodResourcesClient> client_;  // thread-safe
  Clock& clock_;  // backoff, refresh and reprobe timing (thread-safe)
  SnapshotStore<PodResourcesSnapshot> store_;
  std::atomic<bool> first_poll_done_{false};

  // Owned by the polling thread only.
  struct SocketIdentity {
    dev_t device;
    ino_t inode;
    int64_t ctime_sec;
    int64_t ctime_nsec;
    bool operator==(const SocketIdentity&) const = default;
  };
  std::optional<SocketIdentity> socket_;  // at the last poll
  bool kubelet_changed_ = false;          // since the last successful List
  bool up_ = false;
  bool ever_polled_ = false;
  absl::StatusCode last_failure_code_ = absl::StatusCode::kOk;
  int consecutive_failures_ = 0;
  MethodSupport support_[kPodResourcesMethodCount] = {
      MethodSupport::kUnknown, MethodSupport::kUnknown, MethodSupport::kUnknown};
  std::optional<AllocatableResources> allocatable_;
  uint64_t allocatable_generation_ = 0;  // counts changes of allocatable_
  // The last List reply published (serialised) and the allocatable generation published with it.
  std::string last_reply_;
  std::string reply_;  // the latest reply, serialised (scratch kept for its capacity)
  uint64_t published_allocatable_ = 0;
  // resource -> device IDs of the last allocatable answer, to spot devices it did not name.
  absl::flat_hash_map<std::string, absl::flat_hash_set<std::string>> allocatable_known_;
  absl::Time allocatable_success_ = absl::InfinitePast();
  absl::Time allocatable_attempt_ = absl::InfinitePast();
  absl::Time device_change_seen_ = absl::InfinitePast();
  std::vector<absl::Time> allocatable_due_;  // refreshes owed to device changes, earliest first
  absl::Time get_probe_ = absl::InfinitePast();
  std::mt19937_64 rng_;  // jitter for backoff

  absl::once_flag stop_once_;
  absl::Notification stop_;
  std::thread thread_;
  bool started_ = false;  // owner's thread only

  // Self-metrics (prometheus-cpp metric objects are thread-safe).
  prometheus::Family<prometheus::Counter>& requests_family_;
  prometheus::Family<prometheus::Histogram>& duration_family_;
  prometheus::Family<prometheus::Gauge>& supported_family_;
  prometheus::Gauge& up_gauge_;
  prometheus::Gauge& last_success_gauge_;
  prometheus::Histogram* duration_[kPodResourcesMethodCount];
  prometheus::Gauge* supported_[kPodResourcesMethodCount] = {nullptr, nullptr, nullptr};
};

}  // namespace devscope

#endif  // DEVSCOPE_KUBELET_POLLER_H_
