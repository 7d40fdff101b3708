#include "common/clock.h"

#include <algorithm>
#include <iterator>

#include "absl/time/clock.h"

namespace devscope {
namespace {

// How often a fake-clock waiter looks at its stop notification, and how long a poll(2) waiter
// sleeps between looks at a fake clock (real time).
constexpr absl::Duration kFakeSlice = absl::Milliseconds(2);

class RealClock : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
  bool WaitUntil(const absl::Notification& stop, absl::Time deadline) const override {
    return stop.WaitForNotificationWithDeadline(deadline);
  }
  absl::Duration PollTimeout(absl::Time deadline) const override {
    return std::max(deadline - absl::Now(), absl::ZeroDuration());
  }
};

}  // namespace

Clock& Clock::Real() {
  static Clock* const clock = new RealClock();  // never destroyed: threads may outlive main
  return *clock;
}

absl::Time FakeClock::Now() const {
  absl::MutexLock lock(&mu_);
  return now_;
}

bool FakeClock::WaitUntil(const absl::Notification& stop, absl::Time deadline) const {
  absl::MutexLock lock(&mu_);
  const auto waiting = deadlines_.insert(deadline);
  auto come = [this, deadline]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return now_ >= deadline; };
  // `stop` cannot wake a wait on mu_: it is looked at between slices.
  while (!stop.HasBeenNotified()) {
    if (mu_.AwaitWithTimeout(absl::Condition(&come), kFakeSlice)) break;
  }
  deadlines_.erase(waiting);
  return stop.HasBeenNotified();
}

absl::Duration FakeClock::PollTimeout(absl::Time deadline) const {
  return deadline <= Now() ? absl::ZeroDuration() : kFakeSlice;
}

void FakeClock::Advance(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  now_ += std::max(d, absl::ZeroDuration());
}

bool FakeClock::AwaitWaiters(int count, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto enough = [this, count]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    const auto to_come = std::distance(deadlines_.upper_bound(now_), deadlines_.end());
    return to_come >= count;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

absl::Time FakeClock::NextDeadline() const {
  absl::MutexLock lock(&mu_);
  const auto next = deadlines_.upper_bound(now_);
  return next == deadlines_.end() ? absl::InfiniteFuture() : *next;
}

}  // namespace devscope
