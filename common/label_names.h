// Rules for the label names of device series.
#ifndef DEVSCOPE_COMMON_LABEL_NAMES_H_
#define DEVSCOPE_COMMON_LABEL_NAMES_H_

#include "absl/strings/string_view.h"

namespace devscope {

// The labels devscope sets on every device series itself, from the device (resource, device) and
// its holder (namespace, pod, container, and claim_namespace, claim_name for a DRA claim). A sample may not set them: the devicedir parser refuses
// them, and the renderer drops a sample that carries one.
bool IsReservedDeviceLabel(absl::string_view name);

}  // namespace devscope

#endif  // DEVSCOPE_COMMON_LABEL_NAMES_H_
