// One device plugin server: one resource, one socket, the DevicePlugin service of
// kubelet-api.md section 2 (and, on the plugin-watcher route, pluginregistration.Registration).
//
// Every RPC uses gRPC's callback API, so no thread is held per call or per stream: a ListAndWatch
// stream is a reactor that keeps one write in flight and is woken by Update(). The server reads
// only immutable ResourceDevices snapshots; nothing mutable is shared with the handlers.
#ifndef DEVSCOPE_DEVICEPLUGIN_PLUGIN_SERVER_H_
#define DEVSCOPE_DEVICEPLUGIN_PLUGIN_SERVER_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "collectors/collector.h"
#include "deviceplugin/plugin_metrics.h"
#include "deviceplugin/plugin_options.h"
#include "deviceplugin/resource_devices.h"
#include "deviceplugin/v1beta1/api.pb.h"
#include "grpcpp/server.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"

namespace devscope {

class PluginServer {
 public:
  struct Options {
    std::string resource;
    std::string socket_path;  // absolute path of the DevicePlugin socket
    // Plugin-watcher route: absolute path of the pluginregistration socket; empty otherwise.
    std::string registry_socket_path;
    PluginResourceOptions settings;
    PluginMetrics metrics;
    // Called (from a gRPC thread, no lock held) when a ListAndWatch stream opens or closes.
    std::function<void()> on_streams_changed;
  };

  explicit PluginServer(Options options);
  ~PluginServer();  // Shutdown()
  PluginServer(const PluginServer&) = delete;
  PluginServer& operator=(const PluginServer&) = delete;

  // (Re)starts serving on a fresh socket: stops a running server (finishing its streams), removes
  // a stale socket file, binds anew. Unavailable when the socket cannot be bound.
  absl::Status Serve() ABSL_LOCKS_EXCLUDED(serve_mu_);
  // Finishes every stream and stops the server. Idempotent.
  void Shutdown() ABSL_LOCKS_EXCLUDED(serve_mu_);
  // True while the socket file(s) this server bound are still in place (same inode): false once
  // a starting kubelet has deleted them.
  bool SocketsIntact() const ABSL_LOCKS_EXCLUDED(serve_mu_);

  // Replaces the device set; streams get the new list at once when what they advertise (IDs,
  // health, NUMA nodes) changed.
  void Update(std::shared_ptr<const ResourceDevices> devices) ABSL_LOCKS_EXCLUDED(mu_);
  std::shared_ptr<const ResourceDevices> Devices() const ABSL_LOCKS_EXCLUDED(mu_);

  // Sets devscope_device_plugin_registered and counts a registration result (no logging: the
  // caller logs once per change of state).
  void RecordRegistration(bool success);
  void SetRegistered(bool registered);

  int LiveStreams() const ABSL_LOCKS_EXCLUDED(streams_mu_);
  // Streams are numbered 1, 2, ... in the order they opened; this is the last number given.
  uint64_t StreamsOpened() const ABSL_LOCKS_EXCLUDED(streams_mu_);
  // Whether stream number `serial` is still open.
  bool StreamOpen(uint64_t serial) const ABSL_LOCKS_EXCLUDED(streams_mu_);

  v1beta1::DevicePluginOptions PluginOptions() const;
  const std::string& resource() const { return options_.resource; }
  const std::string& socket_path() const { return options_.socket_path; }
  std::string socket_name() const;

  // The RPC bodies (called by the services in plugin_server.cc).
  grpc::Status Allocate(const v1beta1::AllocateRequest& request,
                        v1beta1::AllocateResponse* response);
  grpc::Status GetPreferredAllocation(const v1beta1::PreferredAllocationRequest& request,
                                      v1beta1::PreferredAllocationResponse* response);
  grpc::Status PreStartContainer(const v1beta1::PreStartContainerRequest& request);

  // For the ListAndWatch reactor (internal).
  class Stream;
  std::shared_ptr<const ResourceDevices> CurrentFor(uint64_t* version) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // Returns the stream's number.
  uint64_t AddStream(Stream* stream) ABSL_LOCKS_EXCLUDED(streams_mu_);
  void RemoveStream(Stream* stream) ABSL_LOCKS_EXCLUDED(streams_mu_);

 private:
  void ShutdownLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(serve_mu_);
  void NotifyStreams() ABSL_LOCKS_EXCLUDED(streams_mu_);
  // Makes every stream send its list again (after a refused Allocate, as the kubelet expects).
  void Resend() ABSL_LOCKS_EXCLUDED(mu_);
  void CountAllocation(absl::string_view result);

  const Options options_;

  mutable absl::Mutex serve_mu_;
  std::unique_ptr<grpc::Service> plugin_service_ ABSL_GUARDED_BY(serve_mu_);
  std::unique_ptr<grpc::Service> registration_service_ ABSL_GUARDED_BY(serve_mu_);
  std::unique_ptr<grpc::Server> server_ ABSL_GUARDED_BY(serve_mu_);
  // Inodes of the socket files bound by server_ (st_ino from lstat after binding).
  ino_t socket_inode_ ABSL_GUARDED_BY(serve_mu_) = 0;
  ino_t registry_inode_ ABSL_GUARDED_BY(serve_mu_) = 0;

  mutable absl::Mutex mu_;  // a leaf lock
  std::shared_ptr<const ResourceDevices> devices_ ABSL_GUARDED_BY(mu_);
  uint64_t version_ ABSL_GUARDED_BY(mu_) = 1;

  mutable absl::Mutex streams_mu_;  // taken before a Stream's own lock, never after
  absl::flat_hash_map<Stream*, uint64_t> streams_ ABSL_GUARDED_BY(streams_mu_);  // -> number
  uint64_t streams_opened_ ABSL_GUARDED_BY(streams_mu_) = 0;
};

}  // namespace devscope

#endif  // DEVSCOPE_DEVICEPLUGIN_PLUGIN_SERVER_H_
