// Time that decides behaviour (backoff, staleness, probing, health recovery) comes from a Clock,
// so that tests can move it instead of sleeping. Log timestamps, metric durations and gRPC
// deadlines stay on the real clock: they decide nothing a test needs to control.
#ifndef DEVSCOPE_COMMON_CLOCK_H_
#define DEVSCOPE_COMMON_CLOCK_H_

#include <set>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace devscope {

// Thread-safe: every method may be called from any thread.
class Clock {
 public:
  virtual ~Clock() = default;

  // The process's clock: absl::Now(), real waits.
  static Clock& Real();

  virtual absl::Time Now() const = 0;

  // Blocks until `deadline` on this clock has come or `stop` is notified; true when notified.
  virtual bool WaitUntil(const absl::Notification& stop, absl::Time deadline) const = 0;

  // For a thread that waits in poll(2) (on fds and a deadline at once): the longest real time it
  // may sleep before it looks at Now() again. The real clock: the time until `deadline` (zero once
  // it has come). A fake clock moves only when a test advances it: a short slice.
  virtual absl::Duration PollTimeout(absl::Time deadline) const = 0;
};

// A clock that stands still until a test advances it.
class FakeClock : public Clock {
 public:
  // Starts at `start`: by default a fixed date well after the epoch (2027-01-15).
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1800000000)) : now_(start) {}

  absl::Time Now() const override;
  bool WaitUntil(const absl::Notification& stop, absl::Time deadline) const override;
  absl::Duration PollTimeout(absl::Time deadline) const override;

  // Moves the time forward by `d` (at least zero); waiters whose deadline came wake at once,
  // poll(2) waiters within a slice.
  void Advance(absl::Duration d);

  // Waits (in real time, at most `timeout`) until at least `count` threads wait in WaitUntil for
  // a deadline still to come. A test that advances after that knows those deadlines were taken
  // before the jump.
  bool AwaitWaiters(int count, absl::Duration timeout = absl::Seconds(10)) const;

  // The earliest deadline still to come that a thread waits for in WaitUntil; InfiniteFuture
  // when none does.
  absl::Time NextDeadline() const;

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
  // The deadlines of the threads in WaitUntil.
  mutable std::multiset<absl::Time> deadlines_ ABSL_GUARDED_BY(mu_);
};

}  // namespace devscope

#endif  // DEVSCOPE_COMMON_CLOCK_H_
