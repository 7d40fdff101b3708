// A PodResourcesClient for tests: answers from what the test set, fails where the test says, and
// counts the calls. It answers as the kubelet does (Get of an unknown pod: Unknown "pod NAME in
// namespace NS not found"), so that code under test meets the kubelet's rules, not the fake's.
//
// Thread-safe, like every PodResourcesClient.
#ifndef DEVSCOPE_KUBELET_FAKE_POD_RESOURCES_CLIENT_H_
#define DEVSCOPE_KUBELET_FAKE_POD_RESOURCES_CLIENT_H_

#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "kubelet/pod_resources_client.h"
#include "podresources/v1/api.pb.h"

namespace devscope {

class FakePodResourcesClient : public PodResourcesClient {
 public:
  // What List and Get answer, and what GetAllocatableResources answers.
  void SetPods(std::vector<v1::PodResources> pods);
  void SetAllocatable(v1::AllocatableResourcesResponse allocatable);
  // Every later call of `method` fails with `status`; OkStatus() makes it answer again.
  void SetStatus(PodResourcesMethod method, absl::Status status);

  // Calls made of `method`, failed ones included (not those after Shutdown()).
  int Calls(PodResourcesMethod method) const;
  int Reconnects() const;
  bool IsShutDown() const;

  absl::Status List(v1::ListPodResourcesResponse* response) override;
  absl::Status GetAllocatableResources(v1::AllocatableResourcesResponse* response) override;
  absl::Status Get(const std::string& pod_namespace, const std::string& pod_name,
                   v1::GetPodResourcesResponse* response) override;
  void Shutdown() override;
  void Reconnect() override;

 private:
  // Counts the call; the status it must answer with (Cancelled after Shutdown()).
  absl::Status Begin(PodResourcesMethod method) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::vector<v1::PodResources> pods_ ABSL_GUARDED_BY(mu_);
  v1::AllocatableResourcesResponse allocatable_ ABSL_GUARDED_BY(mu_);
  absl::Status status_[kPodResourcesMethodCount] ABSL_GUARDED_BY(mu_);
  int calls_[kPodResourcesMethodCount] ABSL_GUARDED_BY(mu_) = {0, 0, 0};
  int reconnects_ ABSL_GUARDED_BY(mu_) = 0;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace devscope

#endif  // DEVSCOPE_KUBELET_FAKE_POD_RESOURCES_CLIENT_H_
