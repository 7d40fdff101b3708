#include "collectors/runner.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <exception>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"

namespace devscope {
namespace {

// A burst of file writes (a whole devicedir rewritten) becomes one pass: wait this long after
// the first event, and keep event-driven passes at least kMinEventGap apart.
constexpr absl::Duration kDebounce = absl::Milliseconds(10);
constexpr absl::Duration kMinEventGap = absl::Milliseconds(250);

int ToPollTimeoutMs(absl::Duration d) {
  if (d <= absl::ZeroDuration()) return 0;
  const double ms = std::ceil(absl::ToDoubleMilliseconds(d));
  return static_cast<int>(std::min(ms, 60'000.0));
}

}  // namespace

void DeclareOptions(OptionDeclarer& d, RunnerOptions& o) {
  d.Key("collectors.interval", o.interval,
        "How often the collectors sample telemetry and health (also a pass's deadline)");
  d.Key("collectors.stale_after", o.stale_after,
        "A device whose last good sample is older than this is dropped");
}

CollectorRunner::CollectorRunner(std::vector<std::unique_ptr<Collector>> collectors,
                                 const RunnerOptions& options, HealthModel health, Clock& clock)
    : options_(options), health_(std::move(health)), clock_(clock), deadline_(options.interval) {
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  absl::MutexLock lock(&mu_);
  for (auto& collector : collectors) {
    auto slot = std::make_unique<Slot>();
    slot->name = std::string(collector->name());
    slot->collector = std::move(collector);
    SlotState state;
    state.report.collector = slot->name;
    state.report.error = "no pass finished yet";
    states_.push_back(std::move(state));
    slots_.push_back(std::move(slot));
  }
  PublishLocked(clock_.Now());
}

CollectorRunner::~CollectorRunner() {
  Stop(absl::InfiniteDuration());
  if (stop_fd_ >= 0) ::close(stop_fd_);
}

void CollectorRunner::Start() {
  if (started_) return;
  started_ = true;
  for (size_t i = 0; i < slots_.size(); ++i) threads_.emplace_back([this, i] { Loop(i); });
  watchdog_ = std::thread([this] { Watchdog(); });
}

bool CollectorRunner::Stop(absl::Duration grace) {
  if (!started_) return true;
  if (!stop_requested_) {
    stop_requested_ = true;
    stop_.Notify();
    if (stop_fd_ >= 0) {
      const uint64_t one = 1;
      // Left unread: the eventfd stays readable, so every thread's poll sees it.
      [[maybe_unused]] ssize_t n = ::write(stop_fd_, &one, sizeof(one));
    }
  }
  if (watchdog_.joinable()) watchdog_.join();
  std::vector<size_t> stuck;
  {
    absl::MutexLock lock(&mu_);
    auto all_ended = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return std::all_of(states_.begin(), states_.end(),
                         [](const SlotState& s) { return s.thread_ended; });
    };
    mu_.AwaitWithTimeout(absl::Condition(&all_ended), grace);  // real time: the process's exit
    const absl::Time now = clock_.Now();
    for (size_t i = 0; i < states_.size(); ++i) {
      if (states_[i].thread_ended) continue;
      stuck.push_back(i);
      Log().error(
          "collector stuck in a pass at shutdown; its thread is abandoned and ends with the "
          "process collector={} running_for={}",
          slots_[i]->name,
          absl::FormatDuration(absl::Trunc(now - states_[i].pass_started, absl::Milliseconds(1))));
    }
  }
  for (size_t i = 0; i < threads_.size(); ++i) {
    if (threads_[i].joinable() && std::find(stuck.begin(), stuck.end(), i) == stuck.end()) {
      threads_[i].join();
    }
  }
  return stuck.empty();
}

bool CollectorRunner::first_pass_done() const {
  absl::MutexLock lock(&mu_);
  return std::all_of(states_.begin(), states_.end(),
                     [](const SlotState& s) { return s.done_once; });
}

void CollectorRunner::CollectOnceForTest() {
  for (size_t i = 0; i < slots_.size(); ++i) RunPass(i);
}

bool CollectorRunner::SleepUntil(absl::Time until) {
  while (!stop_.HasBeenNotified()) {
    if (clock_.Now() >= until) return true;
    struct pollfd fd = {stop_fd_, POLLIN, 0};
    const int rc = ::poll(&fd, stop_fd_ >= 0 ? 1 : 0, ToPollTimeoutMs(clock_.PollTimeout(until)));
    if (rc < 0 && errno != EINTR) return !stop_.HasBeenNotified();
  }
  return false;
}

void CollectorRunner::Loop(size_t index) {
  LoopUntilStopped(index);
  absl::MutexLock lock(&mu_);
  states_[index].thread_ended = true;
}

void CollectorRunner::LoopUntilStopped(size_t index) {
  Slot& slot = *slots_[index];
  absl::Time next = clock_.Now();
  absl::Time last_start = absl::InfinitePast();
  while (!stop_.HasBeenNotified()) {
    const absl::Time now = clock_.Now();
    if (now >= next) {
      last_start = now;
      const absl::Time end = RunPass(index);
      // A pass longer than the interval does not start the next one back to back.
      next = std::max(now + options_.interval, end + options_.interval / 10);
      continue;
    }
    int watch_fd = -1;
    try {
      watch_fd = slot.collector->watch_fd();
    } catch (...) {
      watch_fd = -1;
    }
    struct pollfd fds[2] = {{stop_fd_, POLLIN, 0}, {watch_fd, POLLIN, 0}};
    const int rc = ::poll(fds, watch_fd >= 0 ? 2 : 1, ToPollTimeoutMs(clock_.PollTimeout(next)));
    if (rc < 0) {
      if (errno == EINTR) continue;
      // poll itself failing is not expected; fall back to the interval.
      if (!SleepUntil(next)) break;
      continue;
    }
    if (stop_.HasBeenNotified() || (fds[0].revents & POLLIN)) break;
    if (watch_fd >= 0 && (fds[1].revents & (POLLIN | POLLERR | POLLHUP))) {
      if (!SleepUntil(std::max(clock_.Now() + kDebounce, last_start + kMinEventGap))) break;
      bool due = true;
      try {
        due = slot.collector->DrainWatch();
      } catch (...) {
        // A throwing DrainWatch is treated like a change: a pass runs.
      }
      if (due) next = clock_.Now();
    }
  }
}

absl::Time CollectorRunner::RunPass(size_t index) {
  Slot& slot = *slots_[index];
  const absl::Time start = clock_.Now();
  const absl::Time real_start = absl::Now();  // for the duration metric
  {
    absl::MutexLock lock(&mu_);
    states_[index].pass_started = start;
    states_[index].overrun_marked = false;
  }
  absl::StatusOr<std::vector<DeviceReport>> result = absl::UnknownError("collector did not run");
  uint64_t parse_errors = 0;
  try {
    result = slot.collector->Collect();
    parse_errors = slot.collector->parse_errors();
    if (result.ok()) {
      for (DeviceReport& device : *result) health_.Apply(device);
    }
  } catch (const std::exception& e) {
    result = absl::InternalError(absl::StrCat("collector threw: ", e.what()));
  } catch (...) {
    result = absl::InternalError("collector threw a non-standard exception");
  }
  const absl::Time end = clock_.Now();
  const absl::Duration took = end - start;

  std::string error;
  if (!result.ok()) {
    error = std::string(result.status().message());
  } else if (took > deadline_) {
    error = absl::StrCat("deadline exceeded: pass took ", absl::FormatDuration(took), " (deadline ",
                         absl::FormatDuration(deadline_), ")");
  }
  // Logged once per change of error, not once per pass.
  if (error != slot.last_error) {
    if (error.empty()) {
      Log().info("collector recovered collector={}", slot.name);
    } else {
      Log().warn("collector pass failed collector={} error=\"{}\"", slot.name, error);
    }
    slot.last_error = error;
  }
  if (result.ok() && NoteHealthChanges(slot, *result)) {
    last_device_change_nanos_.store(absl::ToUnixNanos(end));
  }

  absl::MutexLock lock(&mu_);
  SlotState& state = states_[index];
  state.pass_started = absl::InfiniteFuture();
  state.done_once = true;
  state.report.duration = absl::Now() - real_start;
  state.report.parse_errors = parse_errors;
  state.report.up = error.empty();
  state.report.error = error;
  if (result.ok()) {
    state.report.time = end;
    state.last_good = end;
    PublishLocked(end, index, &*result);
  } else {
    PublishLocked(end);
  }
  return end;
}

bool CollectorRunner::NoteHealthChanges(Slot& slot, const std::vector<DeviceReport>& devices) {
  bool device_changed = false;
  std::map<std::string, HealthVerdict> seen;
  for (const DeviceReport& device : devices) {
    HealthVerdict verdict{device.health.healthy, device.health.reason};
    const auto previous = slot.health_seen.find(device.info.id);
    const bool changed =
        previous == slot.health_seen.end() ? !verdict.healthy : !(previous->second == verdict);
    if (changed) {
      if (verdict.healthy) {
        Log().info("device healthy collector={} device={}", slot.name, device.info.id);
      } else {
        Log().warn("device unhealthy collector={} device={} reason=\"{}\"", slot.name,
                   device.info.id, verdict.reason);
      }
    }
    if (changed || previous == slot.health_seen.end()) device_changed = true;
    seen.emplace(device.info.id, std::move(verdict));
  }
  for (const auto& [id, verdict] : slot.health_seen) {
    if (!seen.contains(id)) device_changed = true;  // vanished
  }
  slot.health_seen = std::move(seen);
  return device_changed;
}

void CollectorRunner::PublishLocked(absl::Time now, size_t index,
                                    std::vector<DeviceReport>* fresh) {
  const std::shared_ptr<const DeviceSnapshot> previous = store_.Current();
  auto snapshot = std::make_shared<DeviceSnapshot>();
  snapshot->collectors.reserve(states_.size());
  for (size_t i = 0; i < states_.size(); ++i) {
    SlotState& state = states_[i];
    CollectorReport report = state.report;  // no devices: those follow
    if (i == index && fresh != nullptr) {
      report.devices = std::move(*fresh);
    } else if (state.has_devices && previous != nullptr && i < previous->collectors.size()) {
      report.devices = previous->collectors[i].devices;
    }
    // Last good devices outlive failed passes only until they are stale.
    if (!state.report.up && now - state.last_good > options_.stale_after) {
      report.devices.clear();
    }
    state.has_devices = !report.devices.empty();
    snapshot->collectors.push_back(std::move(report));
  }
  store_.Publish(std::move(snapshot));
}

void CollectorRunner::Watchdog() {
  const absl::Duration tick =
      std::clamp(deadline_ / 4, absl::Milliseconds(10), absl::Milliseconds(500));
  // The tick is how often it looks (real time); what it decides is on the clock.
  while (!stop_.WaitForNotificationWithTimeout(tick)) {
    const absl::Time now = clock_.Now();
    absl::MutexLock lock(&mu_);
    bool changed = false;
    for (size_t i = 0; i < states_.size(); ++i) {
      SlotState& state = states_[i];
      if (!state.overrun_marked && now - state.pass_started > deadline_) {
        state.overrun_marked = true;
        state.report.up = false;
        state.report.error = absl::StrCat("deadline exceeded: pass running for over ",
                                          absl::FormatDuration(deadline_));
        // Its outcome is known (down), so readiness no longer waits for it.
        state.done_once = true;
        changed = true;
        Log().warn("collector pass overran its deadline collector={} deadline={}", slots_[i]->name,
                   absl::FormatDuration(deadline_));
      }
      if (!state.report.up && state.has_devices &&
          now - state.last_good > options_.stale_after) {
        changed = true;
      }
    }
    if (changed) PublishLocked(now);
  }
}

}  // namespace devscope
