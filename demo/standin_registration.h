// The registration half of the kubelet stand-in: a real gRPC server on DIR/kubelet.sock that
// serves v1beta1.Registration the way the kubelet does (kubelet-api.md section 2), for
// `devscope demo` and as a fixture for the integration tests and the benchmark.
//
// On Register it validates the version and the resource name (refusing like the kubelet), dials
// the plugin's socket back, calls GetDevicePluginOptions, answers, and then keeps ONE
// ListAndWatch stream per resource with the latest device list. Admit() plays pod admission:
// GetPreferredAllocation (when advertised), Allocate, PreStartContainer (when required).
//
// Every public method is thread-safe.
#ifndef DEVSCOPE_DEMO_STANDIN_REGISTRATION_H_
#define DEVSCOPE_DEMO_STANDIN_REGISTRATION_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "deviceplugin/v1beta1/api.pb.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/server.h"

namespace devscope {

class RegistrationStandin {
 public:
  // One Register call as received.
  struct Registration {
    std::string version;
    std::string endpoint;
    std::string resource;
    v1beta1::DevicePluginOptions options;  // as sent in RegisterRequest
    absl::Time time;                       // when the call arrived
    bool accepted = false;
    std::string error;  // why it was refused
  };

  using DevicePredicate = std::function<bool(const std::vector<v1beta1::Device>&)>;

  RegistrationStandin();
  ~RegistrationStandin();  // Stop()
  RegistrationStandin(const RegistrationStandin&) = delete;
  RegistrationStandin& operator=(const RegistrationStandin&) = delete;

  // Serves Registration on DIR/kubelet.sock (a stale file there is replaced).
  absl::Status Start(const std::string& dir) ABSL_LOCKS_EXCLUDED(lifecycle_mu_);
  // The kubelet goes away: the server stops and every stream is closed (their devices are then
  // all reported unhealthy, as the kubelet does).
  void Stop() ABSL_LOCKS_EXCLUDED(lifecycle_mu_);
  // Like a starting kubelet: stop, delete every socket in the directory (the checkpoint file
  // kubelet_internal_checkpoint stays), then serve kubelet.sock anew.
  absl::Status Restart() ABSL_LOCKS_EXCLUDED(lifecycle_mu_);

  std::vector<Registration> Registrations() const ABSL_LOCKS_EXCLUDED(mu_);
  // The latest device list of `resource` (empty when none was streamed).
  std::vector<v1beta1::Device> Devices(const std::string& resource) const ABSL_LOCKS_EXCLUDED(mu_);
  // Waits until `predicate` holds for the device list of `resource`; false on timeout.
  bool WaitForDevices(const std::string& resource, const DevicePredicate& predicate,
                      absl::Duration timeout) const ABSL_LOCKS_EXCLUDED(mu_);
  // Closes the ListAndWatch stream of `resource` while staying up, as a kubelet does when the
  // stream fails: the devices turn unhealthy until the plugin registers again.
  void DropWatch(const std::string& resource) ABSL_LOCKS_EXCLUDED(watch_mu_);
  // Makes Register fail (code UNKNOWN, like the kubelet's error return) while set.
  void SetRefuse(bool refuse) ABSL_LOCKS_EXCLUDED(mu_);

  // Picks `count` healthy devices of `resource` not handed out yet, asks the plugin's
  // GetPreferredAllocation (when advertised), calls Allocate (and PreStartContainer when required)
  // and records them as handed out. `ids` receives the chosen IDs. Fails with the plugin's status,
  // FailedPrecondition when no plugin is registered for `resource`, ResourceExhausted when too few
  // healthy free devices are left.
  absl::StatusOr<v1beta1::ContainerAllocateResponse> Admit(const std::string& resource, int count,
                                                           std::vector<std::string>* ids)
      ABSL_LOCKS_EXCLUDED(admit_mu_, mu_);
  // Frees devices handed out by Admit.
  void Release(const std::vector<std::string>& ids) ABSL_LOCKS_EXCLUDED(mu_);

  // DIR/kubelet.sock; empty before Start.
  std::string socket_path() const ABSL_LOCKS_EXCLUDED(mu_);

  // The Register handler's work (called by the gRPC service).
  grpc::Status HandleRegister(const v1beta1::RegisterRequest& request) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Watch {
    std::unique_ptr<grpc::ClientContext> context;
    std::thread thread;
  };

  void RunWatch(std::string resource, std::shared_ptr<grpc::Channel> channel,
                grpc::ClientContext* context, uint64_t generation) ABSL_LOCKS_EXCLUDED(mu_);
  void StartWatch(const std::string& resource, std::shared_ptr<grpc::Channel> channel)
      ABSL_LOCKS_EXCLUDED(watch_mu_, mu_);
  void StopLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lifecycle_mu_);
  absl::Status StartLocked(const std::string& dir) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lifecycle_mu_);

  absl::Mutex lifecycle_mu_;  // Start/Stop/Restart, one at a time
  std::unique_ptr<grpc::Service> service_ ABSL_GUARDED_BY(lifecycle_mu_);
  std::unique_ptr<grpc::Server> server_ ABSL_GUARDED_BY(lifecycle_mu_);

  absl::Mutex watch_mu_;  // never held while joining a watch thread that needs it
  bool serving_ ABSL_GUARDED_BY(watch_mu_) = false;
  std::map<std::string, Watch> watches_ ABSL_GUARDED_BY(watch_mu_);

  absl::Mutex admit_mu_;  // one admission at a time, like the kubelet's pod admission

  mutable absl::Mutex mu_;  // a leaf lock
  std::string dir_ ABSL_GUARDED_BY(mu_);
  bool refuse_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Registration> registrations_ ABSL_GUARDED_BY(mu_);
  struct Endpoint {
    std::shared_ptr<grpc::Channel> channel;
    v1beta1::DevicePluginOptions options;  // from GetDevicePluginOptions
  };
  std::map<std::string, Endpoint> endpoints_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::vector<v1beta1::Device>> devices_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> generation_ ABSL_GUARDED_BY(mu_);  // of the current stream
  std::map<std::string, std::set<std::string>> allocated_ ABSL_GUARDED_BY(mu_);
};

}  // namespace devscope

#endif  // DEVSCOPE_DEMO_STANDIN_REGISTRATION_H_
