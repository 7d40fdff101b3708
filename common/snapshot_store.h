// One writer publishes immutable snapshots; any number of readers take the current one.
// This is how data crosses threads in devscope: nothing mutable is shared.
#ifndef DEVSCOPE_COMMON_SNAPSHOT_STORE_H_
#define DEVSCOPE_COMMON_SNAPSHOT_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace devscope {

template <typename T>
class SnapshotStore {
 public:
  // Ends a Subscribe()'s calls when destroyed (or reset), waiting for a call in progress: after
  // that, the listener is never called again. Must not outlive its store.
  class Subscription {
   public:
    Subscription() = default;
    Subscription(Subscription&& other) noexcept
        : store_(std::exchange(other.store_, nullptr)), id_(other.id_) {}
    Subscription& operator=(Subscription&& other) noexcept {
      if (this != &other) {
        Reset();
        store_ = std::exchange(other.store_, nullptr);
        id_ = other.id_;
      }
      return *this;
    }
    ~Subscription() { Reset(); }

    void Reset() {
      if (store_ != nullptr) store_->Unsubscribe(id_);
      store_ = nullptr;
    }

   private:
    friend class SnapshotStore;
    Subscription(const SnapshotStore* store, uint64_t id) : store_(store), id_(id) {}
    const SnapshotStore* store_ = nullptr;
    uint64_t id_ = 0;
  };

  // Replaces the current snapshot, wakes every waiter, then calls every listener.
  void Publish(std::shared_ptr<const T> snapshot) {
    {
      absl::MutexLock lock(&mu_);
      current_ = std::move(snapshot);
      ++version_;
    }
    absl::MutexLock lock(&listeners_mu_);
    for (const auto& [id, listener] : listeners_) listener();
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

  // Calls `listener` on the publishing thread after every later Publish, until the returned
  // Subscription goes. For a thread that waits on something else too (an fd, say): the listener
  // wakes it. It must be quick, must not block, and must not call into this store.
  [[nodiscard]] Subscription Subscribe(std::function<void()> listener) const {
    absl::MutexLock lock(&listeners_mu_);
    const uint64_t id = ++last_listener_id_;
    listeners_.emplace(id, std::move(listener));
    return Subscription(this, id);
  }

 private:
  void Unsubscribe(uint64_t id) const {
    absl::MutexLock lock(&listeners_mu_);
    listeners_.erase(id);
  }

  mutable absl::Mutex mu_;
  std::shared_ptr<const T> current_ ABSL_GUARDED_BY(mu_);
  uint64_t version_ ABSL_GUARDED_BY(mu_) = 0;

  // Listeners are not the published state: a reader (holding the store as const) may subscribe.
  // Held while listeners run, so that Unsubscribe waits for a call in progress.
  mutable absl::Mutex listeners_mu_;
  mutable std::map<uint64_t, std::function<void()>> listeners_ ABSL_GUARDED_BY(listeners_mu_);
  mutable uint64_t last_listener_id_ ABSL_GUARDED_BY(listeners_mu_) = 0;
};

}  // namespace devscope

#endif  // DEVSCOPE_COMMON_SNAPSHOT_STORE_H_
