// Process attribution: which Kubernetes container each process that uses a device runs in. One
// thread, off the scrape path, that
//  - lists the container runtime's containers over its CRI socket
//    (kubelet/container_runtime_client.h) every `interval`, and sooner when a process names a
//    container the last list did not have (at most once a second);
//  - whenever the collectors publish, reads /proc/PID/cgroup (kubelet/process_cgroup.h) of every
//    process a device reports (DeviceReport::processes) under the procfs root;
// and publishes a ProcessAttribution snapshot, which the join reads (exporter/holder_usage.h).
// A runtime that is absent, refuses or does not answer within `timeout` turns attribution off
// (devscope_process_attribution_up 0) until it answers again; nothing else waits on it. A process
// whose cgroup cannot be read, or names no container, or a container the runtime does not know,
// is unattributed, and logged once.
//
// Thread-safety: Start/Stop by the owner; store() and the registry's metrics from any thread.
#ifndef DEVSCOPE_KUBELET_PROCESS_ATTRIBUTION_H_
#define DEVSCOPE_KUBELET_PROCESS_ATTRIBUTION_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "collectors/collector.h"
#include "common/clock.h"
#include "common/options.h"
#include "common/snapshot_store.h"
#include "common/warn_once.h"
#include "kubelet/container_runtime_client.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace devscope {

struct ProcessAttributionOptions {
  std::string procfs = "/proc";  // --path.procfs
  // --container-runtime.socket: the runtime's CRI socket; empty turns attribution off.
  std::string socket_path = "/run/containerd/containerd.sock";
  absl::Duration interval = absl::Seconds(10);  // --container-runtime.interval
  absl::Duration timeout = absl::Seconds(2);    // --container-runtime.timeout
  uint64_t max_message_size = 16 << 20;
};

void DeclareOptions(OptionDeclarer& d, ProcessAttributionOptions& o);

// A container of Kubernetes: the holder labels of a process's share of a device.
struct ContainerName {
  std::string ns;
  std::string pod;
  std::string container;
  bool operator==(const ContainerName&) const = default;
};

// What the attribution knew when it was published.
struct ProcessAttribution {
  // The runtime answered its last ListContainers: attribution is on.
  bool up = false;
  // By PID: the container of each process the last device snapshot reported, for those whose
  // cgroup names a container the runtime knows. A reported process that is not here is
  // unattributed.
  absl::flat_hash_map<uint32_t, ContainerName> containers;
  // The device snapshot these PIDs were read for (compared by identity).
  std::shared_ptr<const DeviceSnapshot> devices;
};

class ProcessAttributor {
 public:
  // Lists through a gRPC client for options.socket_path, timed by `clock` (a fake in tests; it
  // must outlive the attributor).
  ProcessAttributor(ProcessAttributionOptions options, const SnapshotStore<DeviceSnapshot>& devices,
                    prometheus::Registry& registry, const Clock& clock = Clock::Real());
  ~ProcessAttributor();  // Stop()
  ProcessAttributor(const ProcessAttributor&) = delete;
  ProcessAttributor& operator=(const ProcessAttributor&) = delete;

  void Start();
  // Cancels a call in flight and joins the thread. Idempotent.
  void Stop();

  const SnapshotStore<ProcessAttribution>& store() const { return store_; }

 private:
  void Run();
  // Asks the runtime; true when it answered.
  bool ListContainers();
  // Reads the cgroups of `devices`' processes and publishes.
  void Attribute(std::shared_ptr<const DeviceSnapshot> devices);
  // Processes (PID, container ID) whose container the last list lacked: lists again when it may,
  // logs those that stay unattributed.
  void ResolveUnknown(const std::vector<std::pair<uint32_t, std::string>>& unknown,
                      ProcessAttribution& out);

  const ProcessAttributionOptions options_;
  const SnapshotStore<DeviceSnapshot>& devices_;
  const Clock& clock_;  // when to list (the gRPC deadline is real time)
  std::unique_ptr<ContainerRuntimeClient> client_;
  SnapshotStore<ProcessAttribution> store_;
  prometheus::Gauge* up_gauge_;

  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool devices_changed_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;

  // The thread's own state.
  bool up_ = false;
  bool reported_down_ = false;  // the runtime's failure is logged, until it answers again
  absl::flat_hash_map<std::string, ContainerName> by_id_;  // the last list, by container ID
  absl::Time listed_ = absl::InfinitePast();
  // Container IDs that a list made after they were first seen still lacked: they prompt no other
  // list until the next regular one.
  absl::flat_hash_set<std::string> unlisted_;
  WarnOnce warn_{"attribution: "};
};

}  // namespace devscope

#endif  // DEVSCOPE_KUBELET_PROCESS_ATTRIBUTION_H_
