// The bundled kubelet device plugin: one PluginServer per advertised resource, kept in step with
// the device snapshot, registered with the kubelet and re-registered when the kubelet restarts.
//
// One thread, owned here and stopped by Stop(): the control thread owns all per-resource state. It
// applies device snapshots (the store's Subscribe wakes it on each Publish, so a health change
// reaches the streams without any polling delay), watches the device-plugins directory with
// inotify, and drives each resource's registration (one RegistrationState per resource) with
// exponential backoff. Register itself is an asynchronous gRPC call, so a slow kubelet never
// blocks the control thread.
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
#include "common/clock.h"
#include "common/snapshot_store.h"
#include "deviceplugin/cdi_spec.h"
#include "deviceplugin/plugin_options.h"
#include "deviceplugin/plugin_server.h"
#include "grpcpp/support/status.h"
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

  // `numbers` finds the type and numbers of a host device node for the CDI specs (the host's /dev
  // may be mounted elsewhere, see NodeRoots); none: the specs leave them to the runtime.
  DevicePluginManager(const PluginOptions& options, const SnapshotStore<DeviceSnapshot>& devices,
                      prometheus::Registry& registry, NodeNumbers numbers = nullptr);
  DevicePluginManager(const PluginOptions& options, const SnapshotStore<DeviceSnapshot>& devices,
                      prometheus::Registry& registry, Backoff backoff, Clock& clock = Clock::Real(),
                      NodeNumbers numbers = nullptr);
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
  // inotify cannot be set up. With options.enabled off it does nothing and returns OK.
  absl::Status Start();

  // Stops every server, stream, pending registration and thread. Idempotent.
  void Stop();

  // For tests and the demo: the resources being served, and live ListAndWatch streams of all.
  std::vector<std::string> Resources() const ABSL_LOCKS_EXCLUDED(servers_mu_);
  int LiveStreams() const ABSL_LOCKS_EXCLUDED(servers_mu_);
  // The socket path of `resource`'s plugin server; empty when not served.
  std::string SocketPath(const std::string& resource) const ABSL_LOCKS_EXCLUDED(servers_mu_);

  struct Inbox;  // wake-ups from gRPC threads and snapshot publishes (internal)

 private:
  struct Slot;
  struct RegisterCall;

  void ControlLoop();
  void ApplySnapshot() ABSL_EXCLUSIVE_LOCKS_REQUIRED(servers_mu_);
  Slot* EnsureSlot(const std::string& resource) ABSL_EXCLUSIVE_LOCKS_REQUIRED(servers_mu_);
  void HandleInotify(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(servers_mu_);
  void CheckSockets(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(servers_mu_);
  void ReviewStreams(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(servers_mu_);
  void DriveRegistrations(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(servers_mu_);
  void RegisterAgain(Slot& slot, absl::Time now, bool at_once)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(servers_mu_);
  void StartRegister(Slot& slot, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(servers_mu_);
  void CompleteRegistrations(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(servers_mu_);
  void LogRegisterFailure(Slot& slot, const std::string& resource, const grpc::Status& status);
  // When the control thread must next act without being woken: a due Register, a socket check.
  absl::Time NextDeadline(absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(servers_mu_);
  void WatchDirectory();

  const PluginOptions options_;
  const SnapshotStore<DeviceSnapshot>& devices_;
  const Backoff backoff_;
  Clock& clock_;  // registration backoff and socket checks
  const NodeNumbers numbers_;
  absl::Status metrics_status_;
  PluginMetrics metrics_;

  std::string plugins_dir_;   // absolute
  std::string registry_dir_;  // absolute; empty: Register route
  std::string kubelet_socket_;

  std::shared_ptr<Inbox> inbox_;
  SnapshotStore<DeviceSnapshot>::Subscription snapshots_;  // wakes the control thread
  // The control thread's (and Stop's, once it has ended).
  int inotify_fd_ = -1;
  int watch_ = -1;
  std::unique_ptr<CdiSpecWriter> cdi_;  // null with --no-device-plugin.cdi
  bool started_ = false;                // the owner's thread
  absl::Notification stop_;
  std::thread control_;

  // Only the control thread changes slots and the state below, under servers_mu_ so that the
  // accessors above can read the map.
  mutable absl::Mutex servers_mu_;
  std::map<std::string, std::unique_ptr<Slot>> slots_ ABSL_GUARDED_BY(servers_mu_);
  uint64_t applied_version_ ABSL_GUARDED_BY(servers_mu_) = 0;
  // Resources refused, logged once each.
  std::map<std::string, bool> invalid_logged_ ABSL_GUARDED_BY(servers_mu_);
  absl::Time next_socket_check_ ABSL_GUARDED_BY(servers_mu_) = absl::InfinitePast();
  // Register calls whose completion has not been taken from the inbox yet, by call number.
  std::map<uint64_t, std::unique_ptr<RegisterCall>> register_calls_ ABSL_GUARDED_BY(servers_mu_);
  uint64_t register_call_count_ ABSL_GUARDED_BY(servers_mu_) = 0;
};

}  // namespace devscope

#endif  // DEVSCOPE_DEVICEPLUGIN_PLUGIN_MANAGER_H_
