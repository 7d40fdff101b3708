#include "collectors/nvml_xid_watcher.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace devscope {
namespace {

// How long one nvmlEventSetWait_v2 blocks: bounds how long stopping the event thread takes.
constexpr unsigned int kEventWaitMs = 200;

// How logs name an XID's scope.
std::string ScopeName(unsigned int gpu_instance) {
  return gpu_instance == NVML_INVALID_INSTANCE_ID ? std::string("whole-gpu")
                                                  : absl::StrCat(gpu_instance);
}

}  // namespace

NvmlXidWatcher::NvmlXidWatcher(const NvmlApi& api, std::set<uint64_t> ignored_xids,
                               absl::Duration recovery, Clock& clock)
    : api_(api), ignored_xids_(std::move(ignored_xids)), recovery_(recovery), clock_(clock) {}

NvmlXidWatcher::~NvmlXidWatcher() {
  stop_.Notify();
  if (thread_.joinable()) thread_.join();
  if (event_set_ != nullptr) api_.EventSetFree(event_set_);
  if (event_fd_ >= 0) close(event_fd_);
}

void NvmlXidWatcher::Start(unsigned int count) {
  if (api_.EventSetCreate == nullptr || api_.RegisterEvents == nullptr ||
      api_.EventSetWait == nullptr || api_.EventSetFree == nullptr) {
    Log().warn("collector=nvml the NVML library has no event API: no XID health");
    return;
  }
  if (nvmlReturn_t r = api_.EventSetCreate(&event_set_); r != NVML_SUCCESS) {
    Log().warn("collector=nvml nvmlEventSetCreate: {}: no XID health", api_.Error(r));
    event_set_ = nullptr;
    return;
  }
  int registered = 0;
  for (unsigned int index = 0; index < count; ++index) {
    nvmlDevice_t device = nullptr;
    char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = {};
    if (api_.GetHandleByIndex(index, &device) != NVML_SUCCESS ||
        api_.GetUUID(device, uuid, sizeof(uuid)) != NVML_SUCCESS) {
      continue;
    }
    uuid[sizeof(uuid) - 1] = '\0';
    tried_.insert(uuid);
    if (Register(device, uuid)) ++registered;
  }
  if (registered == 0) {
    // Nothing to wait for: no XID health, and no GPU registered later either.
    api_.EventSetFree(event_set_);
    event_set_ = nullptr;
    return;
  }
  event_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (event_fd_ < 0) Log().warn("collector=nvml eventfd failed: XIDs wait for the next pass");
  thread_ = std::thread([this] { EventLoop(); });
}

bool NvmlXidWatcher::Register(nvmlDevice_t device, const std::string& uuid) {
  const nvmlReturn_t r = api_.RegisterEvents(device, nvmlEventTypeXidCriticalError, event_set_);
  if (r != NVML_SUCCESS) {
    Log().warn("collector=nvml device={} nvmlDeviceRegisterEvents: {}: no XID health", uuid,
               api_.Error(r));
    return false;
  }
  absl::MutexLock lock(&mu_);
  history_.try_emplace(uuid);
  return true;
}

void NvmlXidWatcher::RegisterLate(nvmlDevice_t device, const std::string& uuid) {
  if (event_set_ == nullptr || !tried_.insert(uuid).second) return;
  if (Register(device, uuid))
    Log().info("collector=nvml device={} registered for XID events", uuid);
}

void NvmlXidWatcher::DrainEventFd() {
  uint64_t count = 0;
  if (event_fd_ >= 0) (void)!read(event_fd_, &count, sizeof(count));
}

NvmlXidWatcher::Seen NvmlXidWatcher::Snapshot() {
  const absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  if (recovery_ > absl::ZeroDuration()) {
    for (auto it = in_force_.begin(); it != in_force_.end();) {
      if (now - it->second.last >= recovery_) {
        Log().info("collector=nvml device={} gpu_instance={} recovered: no critical XID for {}",
                   it->first.first, ScopeName(it->first.second), absl::FormatDuration(recovery_));
        it = in_force_.erase(it);
      } else {
        ++it;
      }
    }
  }
  return {in_force_, history_};
}

void NvmlXidWatcher::EventLoop() {
  // Nothing may escape the thread (a std::string allocation could throw).
  try {
    int failures = 0;
    while (!stop_.HasBeenNotified()) {
      nvmlEventData_t data = {};
      const nvmlReturn_t r = api_.EventSetWait(event_set_, &data, kEventWaitMs);
      if (r == NVML_ERROR_TIMEOUT) continue;
      if (r != NVML_SUCCESS) {
        // E.g. a GPU lost under the event set: log once, back off instead of spinning.
        if (failures++ == 0) Log().warn("collector=nvml nvmlEventSetWait_v2: {}", api_.Error(r));
        stop_.WaitForNotificationWithTimeout(absl::Seconds(1));
        continue;
      }
      failures = 0;
      if ((data.eventType & nvmlEventTypeXidCriticalError) == 0) continue;
      OnXid(data);
    }
  } catch (...) {
    Log().error("collector=nvml the XID event thread failed; XIDs are no longer watched");
  }
}

void NvmlXidWatcher::OnXid(const nvmlEventData_t& data) {
  char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = {};
  if (data.device == nullptr || api_.GetUUID(data.device, uuid, sizeof(uuid)) != NVML_SUCCESS) {
    Log().warn("collector=nvml XID {} on a GPU NVML cannot name", data.eventData);
    return;
  }
  uuid[sizeof(uuid) - 1] = '\0';
  const uint64_t xid = data.eventData;
  const bool ignored = ignored_xids_.count(xid) > 0;
  {
    const absl::Time now = clock_.Now();
    absl::MutexLock lock(&mu_);
    XidHistory& history = history_[uuid];
    ++history.events;
    ++history.by_xid[xid];
    history.last = XidState{xid, now};
    if (!ignored) in_force_[{uuid, data.gpuInstanceId}] = {xid, now};
  }
  if (ignored) {
    Log().info("collector=nvml device={} xid={} (an application error: health unchanged)", uuid,
               xid);
    return;
  }
  Log().warn("collector=nvml device={} gpu_instance={} critical xid={}: unhealthy", uuid,
             ScopeName(data.gpuInstanceId), xid);
  if (event_fd_ >= 0) {
    const uint64_t one = 1;
    (void)!write(event_fd_, &one, sizeof(one));
  }
}

}  // namespace devscope
