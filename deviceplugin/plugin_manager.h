// The bundled kubelet device plugin: one PluginServer per advertised resource, kept in step with
// the device snapshot, registered with the kubelet and re-registered when the kubelet restarts.
//
// Threads (both owned here, stopped by Stop()):
//  - the snapshot bridge waits on SnapshotStore::WaitForNewer and wakes the control thread at once
//    (a health change reaches the streams without any polling delay);
//  - the control thread owns all per-resource state: it applies snapshots, watches the
//    device-plugins directory with inotify, and drives registration with exponential backoff.
// Register itself is an asynchronous gRPC call, so a slow kubelet never blocks the control thread.
#ifndef DEVSCOPE_DEVICEPLUGIN_PLUGIN_MANAGER_H_
#define DEVSCOPE_DEVICEPLUGIN_PLUGIN_MANAGER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "collectors/collector.h"
#include "common/config.h"
#include "common/snapshot_store.h"
#include "deviceplugin/plugin_server.h"
#include "prometheus/registry.h"

namespace devscope {

class DevicePluginManager {
 public:
  // Retry timing of Register: the first retry after `initial`, doubling up to `max`, back to
  // `initial` after a success or when kubelet.sock is created.
  struct Backoff {
    absl::Duration initial = absl::Milliseconds(100);
    absl::Duration max = absl::Seconds(10);
  };

  DevicePluginManager(const Config& config, const SnapshotStore<DeviceSnapshot>& devices,
                      prometheus::Registry& registry);
  DevicePluginManager(const Config& config, const SnapshotStore<DeviceSnapshot>& devices,
                      prometheus::Registry& registry, Backoff backoff);
  ~DevicePluginManager();  // Stop()
  DevicePluginManager(const DevicePluginManager&) = delete;
  DevicePluginManager& operator=(const DevicePluginManager&) = delete;

  // Validates the configuration and starts serving and registering; returns at once (a kubelet
  // that is absent is retried in the background).
  //
  // Returns InvalidArgument, and starts nothing, when a resource named in the configuration
  // (device_plugin.resources) is not a valid extended resource name: that is an operator's
  // mistake that should stop start-up (exit status 2), not a device's. A device that reports an
  // invalid resource at run time is instead logged once as an error and never advertised or sent.
  // Also fails when the metrics cannot be registered, the directories cannot be created or
  // inotify cannot be set up. With config.device_plugin off it does nothing and returns OK.
  absl::Status Start();

  // Stops every server, stream, pending registration and thread. Idempotent.
  void Stop();

  // For tests and the demo: the resources being served, and live ListAndWatch streams of all.
  std::vector<std::string> Resources() const ABSL_LOCKS_EXCLUDED(servers_mu_);
  int LiveStreams() const ABSL_LOCKS_EXCLUDED(servers_mu_);
  // The socket path of `resource`'s plugin server; empty when not served.
  std::string SocketPath(const std::string& resource) const ABSL_LOCKS_EXCLUDED(servers_mu_);

  struct Inbox;  // wake-ups from gRPC threads (internal)

 private:
  struct Slot;

  void ControlLoop();
  void BridgeLoop();
  void ApplySnapshot();
  Slot* EnsureSlot(const std::string& resource);
  void HandleInotify(absl::Time now);
  void CheckSockets(absl::Time now);
  void ReviewStreams(absl::Time now);
  void DriveRegistrations(absl::Time now);
  void StartRegister(Slot& slot, absl::Time now);
  void CompleteRegistrations(absl::Time now);
  absl::Duration NextTimeout(absl::Time now) const;
  void WatchDirectory();

  const Config config_;
  const SnapshotStore<DeviceSnapshot>& devices_;
  prometheus::Registry& registry_;
  const Backoff backoff_;
  absl::Status metrics_status_;
  PluginMetrics metrics_;

  std::string plugins_dir_;   // absolute
  std::string registry_dir_;  // absolute; empty: Register route
  std::string kubelet_socket_;

  std::shared_ptr<Inbox> inbox_;
  int inotify_fd_ = -1;
  int watch_ = -1;
  bool started_ = false;
  absl::Notification stop_;
  std::thread control_;
  std::thread bridge_;

  // Control-thread state (only the control thread touches slots; servers_mu_ guards the map for
  // the accessors above).
  mutable absl::Mutex servers_mu_;
  std::map<std::string, std::unique_ptr<Slot>> slots_ ABSL_GUARDED_BY(servers_mu_);
  uint64_t applied_version_ = 0;
  std::map<std::string, bool> invalid_logged_;  // resources refused, logged once each
  absl::Time next_socket_check_ = absl::InfinitePast();
};

}  // namespace devscope

#endif  // DEVSCOPE_DEVICEPLUGIN_PLUGIN_MANAGER_H_
