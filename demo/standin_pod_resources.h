// A stand-in for the kubelet's pod-resources API: a real gRPC server on a unix socket serving
// v1.PodResourcesLister, with the kubelet's observable behaviour (global token-bucket rate limit,
// "not found" for Get of an unknown pod, feature gates) and failure injection for tests. Used by
// `devscope demo`, the tests and the benchmarks.
#ifndef DEVSCOPE_DEMO_STANDIN_POD_RESOURCES_H_
#define DEVSCOPE_DEMO_STANDIN_POD_RESOURCES_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "podresources/v1/api.pb.h"

namespace devscope {

// How the stand-in answers one method.
enum class MethodMode {
  kServe,
  kUnimplemented,  // a kubelet that predates the method: UNIMPLEMENTED
  kDisabled,       // a kubelet with the feature gate off: UNKNOWN "PodResources API ... disabled"
};

class PodResourcesStandin {
 public:
  // Serves on `socket_path` (a stale socket file there is replaced). Error when it cannot listen.
  static absl::StatusOr<std::unique_ptr<PodResourcesStandin>> Start(std::string socket_path);
  ~PodResourcesStandin();
  PodResourcesStandin(const PodResourcesStandin&) = delete;
  PodResourcesStandin& operator=(const PodResourcesStandin&) = delete;

  // Stops serving and removes the socket (the kubelet went away). Idempotent.
  void Stop();
  // Removes the socket and serves anew on the same path (a kubelet restart).
  absl::Status Restart();

  // What List and Get answer, and what GetAllocatableResources answers. Thread-safe.
  void SetPods(std::vector<v1::PodResources> pods);
  void SetAllocatable(v1::AllocatableResourcesResponse allocatable);

  // Failure injection, all thread-safe.
  void SetListMode(MethodMode mode);
  void SetAllocatableMode(MethodMode mode);
  void SetGetMode(MethodMode mode);
  // The kubelet's token bucket, shared by every method and client: a call that finds it empty
  // fails with RESOURCE_EXHAUSTED "rejected by rate limit". Default 100 qps, burst 10; qps <= 0
  // turns the limit off.
  void SetRateLimit(double qps, int burst);
  // Every List answer is held back this long (a slow kubelet).
  void SetListDelay(absl::Duration delay);
  // List answers with bytes that do not parse as a ListPodResourcesResponse.
  void SetGarbage(bool on);

  // Calls received for "List", "GetAllocatableResources" or "Get", throttled ones included.
  int CallCount(absl::string_view method) const;
  const std::string& socket_path() const { return socket_path_; }

 private:
  class Service;
  class Server;
  struct State;
  explicit PodResourcesStandin(std::string socket_path);
  absl::Status Serve() ABSL_EXCLUSIVE_LOCKS_REQUIRED(server_mu_);

  const std::string socket_path_;
  std::shared_ptr<State> state_;  // shared with the service's handlers
  absl::Mutex server_mu_;         // serialises Stop/Restart
  std::unique_ptr<Server> server_ ABSL_GUARDED_BY(server_mu_);
};

// Builders that keep test and demo pods short.
v1::ContainerDevices MakeDevices(absl::string_view resource, std::vector<std::string> ids,
                                 std::vector<int64_t> numa_nodes = {});
v1::ContainerMemory MakeMemory(absl::string_view memory_type, uint64_t size,
                               std::vector<int64_t> numa_nodes = {});
// One DynamicResource with one ClaimResource.
v1::DynamicResource MakeClaim(absl::string_view claim_namespace, absl::string_view claim_name,
                              absl::string_view driver, absl::string_view pool,
                              absl::string_view device,
                              std::optional<std::string> share_id = std::nullopt,
                              std::vector<std::string> cdi_devices = {});
v1::ContainerResources MakeContainer(absl::string_view name,
                                     std::vector<v1::ContainerDevices> devices = {},
                                     std::vector<int64_t> cpus = {},
                                     std::vector<v1::ContainerMemory> memory = {},
                                     std::vector<v1::DynamicResource> claims = {});
v1::PodResources MakePod(absl::string_view ns, absl::string_view name,
                         std::vector<v1::ContainerResources> containers);
// A node's worth of pods: `pods` pods in namespace "bulk" (pod-N), each with `containers`
// containers holding `devices` devices of example.com/dev, IDs padded to `id_length` characters
// (to build large replies), NUMA node = device index % 2.
std::vector<v1::PodResources> MakeFleet(int pods, int containers, int devices, int id_length = 0);

}  // namespace devscope

#endif  // DEVSCOPE_DEMO_STANDIN_POD_RESOURCES_H_
