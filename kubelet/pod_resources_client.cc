#include "kubelet/pod_resources_client.h"

#include "absl/strings/match.h"

namespace devscope {

absl::string_view MethodName(PodResourcesMethod method) {
  switch (method) {
    case PodResourcesMethod::kList:
      return "List";
    case PodResourcesMethod::kGetAllocatableResources:
      return "GetAllocatableResources";
    case PodResourcesMethod::kGet:
      return "Get";
  }
  return "";
}

MethodSupport SupportFromStatus(PodResourcesMethod method, const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return MethodSupport::kServed;
    case absl::StatusCode::kUnimplemented:
      return MethodSupport::kNotServed;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kResourceExhausted:
      return MethodSupport::kUnknown;
    default:
      break;
  }
  switch (method) {
    case PodResourcesMethod::kList:
      return MethodSupport::kUnknown;
    case PodResourcesMethod::kGetAllocatableResources:
      return status.code() == absl::StatusCode::kUnknown ||
                     status.code() == absl::StatusCode::kFailedPrecondition
                 ? MethodSupport::kNotServed
                 : MethodSupport::kUnknown;
    case PodResourcesMethod::kGet:
      return absl::StrContains(status.message(), "not found") ? MethodSupport::kServed
                                                              : MethodSupport::kNotServed;
  }
  return MethodSupport::kUnknown;
}

}  // namespace devscope
