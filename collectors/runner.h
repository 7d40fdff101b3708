// Runs every collector off the scrape path, each on its own thread, and publishes their merged
// results as one immutable DeviceSnapshot.
//
// Each collector is collected every options.interval, and at once when its watch_fd()
// becomes readable. A pass has a deadline (the interval): a pass still running past it is
// published as up=false ("deadline exceeded") by a watchdog thread while the stuck thread goes on,
// so it never stalls the other collectors. A failed pass (an error or an exception) publishes
// up=false with the error and keeps the last good devices until they are older than
// options.stale_after. Health is final in the snapshot: the runner applies the health
// model (collectors/health.h) before publishing and logs each device's reason once per change.
#ifndef DEVSCOPE_COLLECTORS_RUNNER_H_
#define DEVSCOPE_COLLECTORS_RUNNER_H_

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "collectors/collector.h"
#include "collectors/health.h"
#include "common/clock.h"
#include "common/options.h"
#include "common/snapshot_store.h"

namespace devscope {

// YAML collectors.interval and collectors.stale_after.
struct RunnerOptions {
  // How often each collector runs, and its pass's deadline.
  absl::Duration interval = absl::Seconds(5);
  // A device whose last good sample is older than this is dropped.
  absl::Duration stale_after = absl::Minutes(1);
};
void DeclareOptions(OptionDeclarer& d, RunnerOptions& o);

class CollectorRunner {
 public:
  // Publishes a first snapshot at once (every collector up=false, "no pass finished yet"), so
  // readers never see null once the runner exists.
  // `clock` (which must outlive the runner) times the passes, their deadline and staleness.
  CollectorRunner(std::vector<std::unique_ptr<Collector>> collectors, const RunnerOptions& options,
                  HealthModel health = {}, Clock& clock = Clock::Real());
  // Stop(), waiting as long as it takes: a runner whose Stop() returned false must not be
  // destroyed.
  ~CollectorRunner();
  CollectorRunner(const CollectorRunner&) = delete;
  CollectorRunner& operator=(const CollectorRunner&) = delete;

  // Starts one thread per collector and the deadline watchdog. Once only.
  void Start();
  // How long Stop() waits for a pass in progress by default.
  static constexpr absl::Duration kStopGrace = absl::Milliseconds(400);

  // Signals every thread and joins it; a pass in progress is waited for up to `grace`. A
  // collector stuck inside Collect() longer (a driver call that never returns, a file system that
  // does not answer) cannot be interrupted, and a thread cannot be killed: its thread is left
  // running, logged as abandoned, and Stop() returns false. The runner must then outlive that
  // thread: its owner keeps it for the rest of the process (Agent), which ends without running
  // destructors the thread could still use. True when every thread was joined. Idempotent.
  bool Stop(absl::Duration grace = kStopGrace);

  const SnapshotStore<DeviceSnapshot>& store() const { return store_; }

  // Every collector finished one pass (or overran its first deadline): for /readyz.
  bool first_pass_done() const;

  // When a pass last found a device that appeared, vanished or changed health: what changes the
  // kubelet's allocatable devices. On the runner's clock; InfinitePast before any. Any thread.
  absl::Time last_device_change() const {
    const int64_t nanos = last_device_change_nanos_.load(std::memory_order_relaxed);
    return nanos == 0 ? absl::InfinitePast() : absl::FromUnixNanos(nanos);
  }

  // Runs one pass of every collector synchronously on the calling thread (tests, benchmarks).
  // Not to be mixed with Start().
  void CollectOnceForTest();

 private:
  // Used only by the thread that runs the slot's passes.
  struct Slot {
    std::unique_ptr<Collector> collector;
    std::string name;
    std::map<std::string, HealthVerdict> health_seen;  // device ID -> last logged verdict
    std::string last_error;                            // last logged pass error
  };
  // The slot's shared state, guarded by mu_.
  struct SlotState {
    // Latest outcome, without devices: the last good pass's devices are kept once, in the
    // snapshot last published (store_), and carried from one snapshot to the next.
    CollectorReport report;
    bool has_devices = false;  // the last published snapshot holds devices of this slot
    absl::Time last_good = absl::InfinitePast();
    absl::Time pass_started = absl::InfiniteFuture();  // InfiniteFuture: no pass running
    bool overrun_marked = false;  // the watchdog published this pass as deadline exceeded
    bool done_once = false;
    bool thread_ended = false;  // its thread has left Loop()
  };

  void Loop(size_t index);
  void LoopUntilStopped(size_t index);
  // Runs one pass and publishes it; returns when it ended, on the clock.
  absl::Time RunPass(size_t index);
  // Logs each device's health once per change; true when a device appeared, vanished or changed
  // health since the slot's last pass.
  static bool NoteHealthChanges(Slot& slot, const std::vector<DeviceReport>& devices);
  void Watchdog();
  // Waits until `until` or stop; false when stopping.
  bool SleepUntil(absl::Time until);
  // Publishes every slot's report; `fresh`, when given, are slot `index`'s new devices (moved
  // in), the other slots keep the devices of the snapshot published before.
  void PublishLocked(absl::Time now, size_t index = SIZE_MAX,
                     std::vector<DeviceReport>* fresh = nullptr) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const RunnerOptions options_;
  const HealthModel health_;
  Clock& clock_;
  const absl::Duration deadline_;
  std::vector<std::unique_ptr<Slot>> slots_;
  SnapshotStore<DeviceSnapshot> store_;

  mutable absl::Mutex mu_;
  std::vector<SlotState> states_ ABSL_GUARDED_BY(mu_);

  std::atomic<int64_t> last_device_change_nanos_{0};  // 0: none yet
  absl::Notification stop_;
  int stop_fd_ = -1;      // eventfd written on Stop, so poll(2) in each thread wakes up
  bool started_ = false;  // Start/Stop are called by the owner's thread only
  bool stop_requested_ = false;
  std::vector<std::thread> threads_;
  std::thread watchdog_;
};

}  // namespace devscope

#endif  // DEVSCOPE_COLLECTORS_RUNNER_H_
