// Critical XID events of NVIDIA GPUs, for the nvml collector's health.
//
// A critical XID (nvmlEventTypeXidCriticalError) not in the ignored list makes its scope (a GPU,
// or one MIG GPU instance of it) unhealthy with reason "xid N"; the scope recovers after
// `recovery` without another critical XID (zero: never). Why a quiet period: NVML offers no
// "fault cleared" event, and a GPU that is still broken keeps raising XIDs (and a lost one stays
// lost), while a reset or a transient fault leaves it quiet, so the device is not lost to the node
// until devscope restarts.
//
// Threads: a helper thread owned here blocks in nvmlEventSetWait_v2 (with a short timeout, so it
// stops promptly) and bridges each critical XID to an eventfd, event_fd(), so that the runner
// collects at once. Everything else is called from the collector's thread. No exception or crash
// crosses the C boundary: NVML is only called, never calls back.
#ifndef DEVSCOPE_COLLECTORS_NVML_XID_WATCHER_H_
#define DEVSCOPE_COLLECTORS_NVML_XID_WATCHER_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "collectors/nvml_loader.h"
#include "common/clock.h"

namespace devscope {

// A GPU's UUID and the MIG GPU instance (NVML_INVALID_INSTANCE_ID for the whole GPU).
using XidScope = std::pair<std::string, unsigned int>;

// The critical XID in force for a scope.
struct XidState {
  uint64_t xid = 0;
  absl::Time last;  // the latest critical XID of this scope
};

// A registered GPU's XID events since devscope registered it (those of its MIG instances
// included), ignored XIDs included.
struct XidHistory {
  uint64_t events = 0;
  std::map<uint64_t, uint64_t> by_xid;  // events per XID
  std::optional<XidState> last;         // the latest XID and when it came
};

class NvmlXidWatcher {
 public:
  // `clock` (which must outlive the watcher) times the recovery.
  NvmlXidWatcher(const NvmlApi& api, std::set<uint64_t> ignored_xids, absl::Duration recovery,
                 Clock& clock);
  ~NvmlXidWatcher();  // stops the thread, frees the event set
  NvmlXidWatcher(const NvmlXidWatcher&) = delete;
  NvmlXidWatcher& operator=(const NvmlXidWatcher&) = delete;

  // Registers the `count` GPUs NVML lists for XID events and starts the thread that waits for
  // them. Without an event set (old driver, no permission) it logs why and does nothing more: the
  // collector still collects, without XID health. Call once.
  void Start(unsigned int count);

  // Readable after a critical XID; -1 when there is nothing to watch.
  int event_fd() const { return event_fd_; }
  void DrainEventFd();

  // A GPU that NVML did not list at Start (or whose registration failed then) is registered when
  // a pass first sees it; tried once per GPU.
  void RegisterLate(nvmlDevice_t device, const std::string& uuid);

  // What one collector pass reads, taken at one instant so that a report's health and its XID
  // counters agree: the critical XIDs still in force (dropping, and logging, those past the
  // recovery period) and the XID events seen of each registered GPU (a GPU that is not
  // registered has no entry).
  struct Seen {
    std::map<XidScope, XidState> in_force;
    std::map<std::string, XidHistory> history;
  };
  Seen Snapshot();

 private:
  bool Register(nvmlDevice_t device, const std::string& uuid);
  void EventLoop();
  void OnXid(const nvmlEventData_t& data);

  const NvmlApi& api_;
  const std::set<uint64_t> ignored_xids_;
  const absl::Duration recovery_;
  Clock& clock_;
  nvmlEventSet_t event_set_ = nullptr;
  int event_fd_ = -1;
  std::set<std::string> tried_;  // GPUs whose registration was tried (the collector's thread)

  absl::Mutex mu_;
  // Critical XIDs in force, written by the event thread, read by the collector.
  std::map<XidScope, XidState> in_force_ ABSL_GUARDED_BY(mu_);
  // XID events seen per registered GPU.
  std::map<std::string, XidHistory> history_ ABSL_GUARDED_BY(mu_);

  absl::Notification stop_;
  std::thread thread_;  // last: started after everything it reads
};

}  // namespace devscope

#endif  // DEVSCOPE_COLLECTORS_NVML_XID_WATCHER_H_
