// ThreadSanitizer cannot see Debian's Abseil synchronise: libabsl_synchronization is built
// without TSan, and absl::Mutex, CondVar and Notification work on atomics and futexes inside it.
// Without help every variable guarded by an absl::Mutex would be reported as a race. The TSan
// build links devscope's executables with -Wl,--wrap for each call below (CMakeLists.txt), and
// these wrappers tell TSan the happens-before edges the real calls make: a lock acquires what the
// last unlock released; waiting on a condition releases and reacquires the mutex; a notification
// releases what waiting for it (or seeing it) acquires. Only devscope's own calls are wrapped;
// Abseil's calls inside gRPC stay unseen, as all of gRPC's uninstrumented internals are.
#include <sanitizer/tsan_interface.h>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

using absl::Condition;
using absl::CondVar;
using absl::Duration;
using absl::Mutex;
using absl::Notification;
using absl::Time;

namespace {
void Acquire(const void* p) { __tsan_acquire(const_cast<void*>(p)); }
void Release(const void* p) { __tsan_release(const_cast<void*>(p)); }

// Notification's flag, which the inline HasBeenNotified() loads.
const void* FlagOf(const Notification* n) {
  static_assert(sizeof(Notification) == sizeof(Mutex) + 8, "Notification is {Mutex, atomic}");
  return reinterpret_cast<const char*>(n) + sizeof(Mutex);
}
// absl evaluates a Condition inside the (uninstrumented) lock call, with the mutex held, on the
// waiting thread or on one that unlocks: each evaluation is ordered as the critical section it
// runs in, acquiring what the last unlock released and releasing to the next lock.
struct Guarded {
  const Condition* condition;
  const Mutex* mu;
};
bool EvalGuarded(Guarded* g) {
  Acquire(g->mu);
  const bool holds = g->condition->Eval();
  Release(g->mu);
  return holds;
}
}  // namespace

extern "C" {
// Mutex: lock and unlock.
void __real__ZN4absl7debian35Mutex4LockEv(Mutex*);
void __wrap__ZN4absl7debian35Mutex4LockEv(Mutex* mu) {
  __real__ZN4absl7debian35Mutex4LockEv(mu);
  Acquire(mu);
}
void __real__ZN4absl7debian35Mutex10ReaderLockEv(Mutex*);
void __wrap__ZN4absl7debian35Mutex10ReaderLockEv(Mutex* mu) {
  __real__ZN4absl7debian35Mutex10ReaderLockEv(mu);
  Acquire(mu);
}
bool __real__ZN4absl7debian35Mutex7TryLockEv(Mutex*);
bool __wrap__ZN4absl7debian35Mutex7TryLockEv(Mutex* mu) {
  const bool locked = __real__ZN4absl7debian35Mutex7TryLockEv(mu);
  if (locked) Acquire(mu);
  return locked;
}
bool __real__ZN4absl7debian35Mutex13ReaderTryLockEv(Mutex*);
bool __wrap__ZN4absl7debian35Mutex13ReaderTryLockEv(Mutex* mu) {
  const bool locked = __real__ZN4absl7debian35Mutex13ReaderTryLockEv(mu);
  if (locked) Acquire(mu);
  return locked;
}
void __real__ZN4absl7debian35Mutex6UnlockEv(Mutex*);
void __wrap__ZN4absl7debian35Mutex6UnlockEv(Mutex* mu) {
  Release(mu);
  __real__ZN4absl7debian35Mutex6UnlockEv(mu);
}
void __real__ZN4absl7debian35Mutex12ReaderUnlockEv(Mutex*);
void __wrap__ZN4absl7debian35Mutex12ReaderUnlockEv(Mutex* mu) {
  Release(mu);
  __real__ZN4absl7debian35Mutex12ReaderUnlockEv(mu);
}

// Mutex: lock when a condition holds (the result says whether it held; the lock is taken
// either way).
void __real__ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE(Mutex*, const Condition&);
void __wrap__ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE(Mutex* mu, const Condition& c) {
  Guarded guarded{&c, mu};
  __real__ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE(mu, Condition(&EvalGuarded, &guarded));
  Acquire(mu);
}
bool __real__ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE(
    Mutex*, const Condition&, Duration);
bool __wrap__ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE(
    Mutex* mu, const Condition& c, Duration d) {
  Guarded guarded{&c, mu};
  const bool held =
      __real__ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE(
          mu, Condition(&EvalGuarded, &guarded), d);
  Acquire(mu);
  return held;
}
bool __real__ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE(
    Mutex*, const Condition&, Time);
bool __wrap__ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE(
    Mutex* mu, const Condition& c, Time t) {
  Guarded guarded{&c, mu};
  const bool held = __real__ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE(
      mu, Condition(&EvalGuarded, &guarded), t);
  Acquire(mu);
  return held;
}
void __real__ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE(Mutex*, const Condition&);
void __wrap__ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE(Mutex* mu,
                                                                     const Condition& c) {
  Guarded guarded{&c, mu};
  __real__ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE(
      mu, Condition(&EvalGuarded, &guarded));
  Acquire(mu);
}

// Mutex: wait for a condition with the lock held (released while waiting).
void __real__ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE(Mutex*, const Condition&);
void __wrap__ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE(Mutex* mu, const Condition& c) {
  Release(mu);
  Guarded guarded{&c, mu};
  __real__ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE(mu, Condition(&EvalGuarded, &guarded));
  Acquire(mu);
}
bool __real__ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE(
    Mutex*, const Condition&, Duration);
bool __wrap__ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE(
    Mutex* mu, const Condition& c, Duration d) {
  Release(mu);
  Guarded guarded{&c, mu};
  const bool held = __real__ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE(
      mu, Condition(&EvalGuarded, &guarded), d);
  Acquire(mu);
  return held;
}
bool __real__ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE(Mutex*,
                                                                                  const Condition&,
                                                                                  Time);
bool __wrap__ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE(
    Mutex* mu, const Condition& c, Time t) {
  Release(mu);
  Guarded guarded{&c, mu};
  const bool held = __real__ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE(
      mu, Condition(&EvalGuarded, &guarded), t);
  Acquire(mu);
  return held;
}

// CondVar: wait (the mutex is released while waiting).
void __real__ZN4absl7debian37CondVar4WaitEPNS0_5MutexE(CondVar*, Mutex*);
void __wrap__ZN4absl7debian37CondVar4WaitEPNS0_5MutexE(CondVar* cv, Mutex* mu) {
  Release(mu);
  __real__ZN4absl7debian37CondVar4WaitEPNS0_5MutexE(cv, mu);
  Acquire(mu);
}
bool __real__ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE(CondVar*, Mutex*,
                                                                                 Duration);
bool __wrap__ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE(CondVar* cv,
                                                                                 Mutex* mu,
                                                                                 Duration d) {
  Release(mu);
  const bool timed_out =
      __real__ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE(cv, mu, d);
  Acquire(mu);
  return timed_out;
}
bool __real__ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE(CondVar*, Mutex*,
                                                                              Time);
bool __wrap__ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE(CondVar* cv,
                                                                              Mutex* mu, Time t) {
  Release(mu);
  const bool timed_out =
      __real__ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE(cv, mu, t);
  Acquire(mu);
  return timed_out;
}

// Notification: Notify releases on the flag; a wait that saw it acquires. HasBeenNotified() is an
// acquiring load of the flag inlined into devscope's code, which TSan sees acquire the release.
void __real__ZN4absl7debian312Notification6NotifyEv(Notification*);
void __wrap__ZN4absl7debian312Notification6NotifyEv(Notification* n) {
  Release(FlagOf(n));
  __real__ZN4absl7debian312Notification6NotifyEv(n);
}
void __real__ZNK4absl7debian312Notification19WaitForNotificationEv(const Notification*);
void __wrap__ZNK4absl7debian312Notification19WaitForNotificationEv(const Notification* n) {
  __real__ZNK4absl7debian312Notification19WaitForNotificationEv(n);
  Acquire(FlagOf(n));
}
bool __real__ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE(
    const Notification*, Duration);
bool __wrap__ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE(
    const Notification* n, Duration d) {
  const bool notified =
      __real__ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE(n, d);
  if (notified) Acquire(FlagOf(n));
  return notified;
}
bool __real__ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE(
    const Notification*, Time);
bool __wrap__ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE(
    const Notification* n, Time t) {
  const bool notified =
      __real__ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE(n, t);
  if (notified) Acquire(FlagOf(n));
  return notified;
}
}  // extern "C"
