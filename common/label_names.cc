#include "common/label_names.h"

namespace devscope {

bool IsReservedDeviceLabel(absl::string_view name) {
  return name == "resource" || name == "device" || name == "namespace" || name == "pod" ||
         name == "container" || name == "claim_namespace" || name == "claim_name";
}

}  // namespace devscope
