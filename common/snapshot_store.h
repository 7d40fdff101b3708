// One writer publishes immutable snapshots; any number of readers take the current one.
// This is how data crosses threads in devscope: nothing mutable is shared.
#ifndef DEVSCOPE_COMMON_SNAPSHOT_STORE_H_
#define DEVSCOPE_COMMON_SNAPSHOT_STORE_H_

#include <cstdint>
#include <memory>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace devscope {

template <typename T>
class SnapshotStore {
 public:
  // Replaces the current snapshot and wakes every waiter.
  void Publish(std::shared_ptr<const T> snapshot) {
    absl::MutexLock lock(&mu_);
    current_ = std::move(snapshot);
    ++version_;
  }

  // The current snapshot; null before the first Publish.
  std::shared_ptr<const T> Current() const {
    absl::MutexLock lock(&mu_);
    return current_;
  }

  // Counts publications; 0 before the first.
  uint64_t Version() const {
    absl::MutexLock lock(&mu_);
    return version_;
  }

  // Waits until a snapshot newer than `seen` is published or `timeout` passes; returns the version
  // then current.
  uint64_t WaitForNewer(uint64_t seen, absl::Duration timeout) const {
    absl::MutexLock lock(&mu_);
    auto newer = [this, seen]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return version_ > seen; };
    mu_.AwaitWithTimeout(absl::Condition(&newer), timeout);
    return version_;
  }

 private:
  mutable absl::Mutex mu_;
  std::shared_ptr<const T> current_ ABSL_GUARDED_BY(mu_);
  uint64_t version_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace devscope

#endif  // DEVSCOPE_COMMON_SNAPSHOT_STORE_H_
