#include "common/version.h"

#include "absl/strings/str_cat.h"

namespace devscope {

const char* Version() { return DEVSCOPE_VERSION; }
const char* Revision() { return DEVSCOPE_REVISION; }

std::string VersionString() {
  return absl::StrCat("devscope ", Version(), " (revision ", Revision(), ")");
}

}  // namespace devscope
