// The kubelet's pod-resources API (v1.PodResourcesLister) as devscope asks it: a small interface
// with one gRPC implementation (kubelet/grpc_pod_resources_client.h) and one fake for tests
// (kubelet/fake_pod_resources_client.h), and the one rule for what an answer says about whether
// the kubelet serves a method.
//
// Thread-safety: every implementation is thread-safe. Calls may be made from any thread,
// concurrently; Shutdown() and Reconnect() may be called from any thread at any time, also while
// a call is in flight.
#ifndef DEVSCOPE_KUBELET_POD_RESOURCES_CLIENT_H_
#define DEVSCOPE_KUBELET_POD_RESOURCES_CLIENT_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "podresources/v1/api.pb.h"

namespace devscope {

// The three methods, in the order the metrics list them.
enum class PodResourcesMethod { kList = 0, kGetAllocatableResources = 1, kGet = 2 };
inline constexpr int kPodResourcesMethodCount = 3;

// The method's name as the `method` label spells it: List, GetAllocatableResources, Get.
absl::string_view MethodName(PodResourcesMethod method);

class PodResourcesClient {
 public:
  virtual ~PodResourcesClient() = default;

  // One call each, blocking until the kubelet answers, the implementation's deadline passes or
  // Shutdown() cancels it. The status code is gRPC's (absl and gRPC share the numbering); a reply
  // that does not parse is Internal, never Unimplemented.
  virtual absl::Status List(v1::ListPodResourcesResponse* response) = 0;
  virtual absl::Status GetAllocatableResources(v1::AllocatableResourcesResponse* response) = 0;
  virtual absl::Status Get(const std::string& pod_namespace, const std::string& pod_name,
                           v1::GetPodResourcesResponse* response) = 0;

  // Cancels the calls in flight and fails every later call with Cancelled: a prompt, clean stop
  // that does not wait out a slow kubelet's deadline. Idempotent.
  virtual void Shutdown() = 0;

  // Drops the connection so that the next call dials afresh: a kubelet that restarted is a new
  // server, and the old connection's reconnect backoff would delay finding it.
  virtual void Reconnect() = 0;
};

// What one answer says about whether the kubelet serves a method.
enum class MethodSupport {
  kUnknown,    // a passing failure (unreachable, throttled, slow): says nothing
  kServed,     // it answered
  kNotServed,  // Unimplemented (a kubelet that predates it), or switched off by its feature gate
};

// The one rule, used by the poller and by `devscope pod`:
//  - OK: served. Unimplemented: not served, for every method.
//  - Unavailable, DeadlineExceeded, Cancelled, ResourceExhausted: unknown (passing).
//  - List: any other failure is unknown (List is never switched off).
//  - GetAllocatableResources: Unknown or FailedPrecondition is the kubelet's "... disabled"
//    (gate off before 1.28): not served; anything else unknown.
//  - Get: a message saying "not found" is the kubelet answering about a pod it does not have
//    (code Unknown, not NotFound): served; any other failure is the gate-off error: not served.
MethodSupport SupportFromStatus(PodResourcesMethod method, const absl::Status& status);

}  // namespace devscope

#endif  // DEVSCOPE_KUBELET_POD_RESOURCES_CLIENT_H_
