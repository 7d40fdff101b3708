#include "kubelet/fake_pod_resources_client.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace devscope {

void FakePodResourcesClient::SetPods(std::vector<v1::PodResources> pods) {
  absl::MutexLock lock(&mu_);
  pods_ = std::move(pods);
}

void FakePodResourcesClient::SetAllocatable(v1::AllocatableResourcesResponse allocatable) {
  absl::MutexLock lock(&mu_);
  allocatable_ = std::move(allocatable);
}

void FakePodResourcesClient::SetStatus(PodResourcesMethod method, absl::Status status) {
  absl::MutexLock lock(&mu_);
  status_[static_cast<int>(method)] = std::move(status);
}

int FakePodResourcesClient::Calls(PodResourcesMethod method) const {
  absl::MutexLock lock(&mu_);
  return calls_[static_cast<int>(method)];
}

int FakePodResourcesClient::Reconnects() const {
  absl::MutexLock lock(&mu_);
  return reconnects_;
}

bool FakePodResourcesClient::IsShutDown() const {
  absl::MutexLock lock(&mu_);
  return shut_down_;
}

absl::Status FakePodResourcesClient::Begin(PodResourcesMethod method) {
  if (shut_down_) return absl::CancelledError("the pod-resources client is shut down");
  ++calls_[static_cast<int>(method)];
  return status_[static_cast<int>(method)];
}

absl::Status FakePodResourcesClient::List(v1::ListPodResourcesResponse* response) {
  absl::MutexLock lock(&mu_);
  if (absl::Status status = Begin(PodResourcesMethod::kList); !status.ok()) return status;
  response->Clear();
  for (const v1::PodResources& pod : pods_) *response->add_pod_resources() = pod;
  return absl::OkStatus();
}

absl::Status FakePodResourcesClient::GetAllocatableResources(
    v1::AllocatableResourcesResponse* response) {
  absl::MutexLock lock(&mu_);
  absl::Status status = Begin(PodResourcesMethod::kGetAllocatableResources);
  if (!status.ok()) return status;
  *response = allocatable_;
  return absl::OkStatus();
}

absl::Status FakePodResourcesClient::Get(const std::string& pod_namespace,
                                         const std::string& pod_name,
                                         v1::GetPodResourcesResponse* response) {
  absl::MutexLock lock(&mu_);
  if (absl::Status status = Begin(PodResourcesMethod::kGet); !status.ok()) return status;
  for (const v1::PodResources& pod : pods_) {
    if (pod.namespace_() == pod_namespace && pod.name() == pod_name) {
      *response->mutable_pod_resources() = pod;
      return absl::OkStatus();
    }
  }
  return absl::UnknownError(
      absl::StrCat("pod ", pod_name, " in namespace ", pod_namespace, " not found"));
}

void FakePodResourcesClient::Shutdown() {
  absl::MutexLock lock(&mu_);
  shut_down_ = true;
}

void FakePodResourcesClient::Reconnect() {
  absl::MutexLock lock(&mu_);
  ++reconnects_;
}

}  // namespace devscope
