// devscope's version and the source revision it was built from (devscope_build_info, --version).
#ifndef DEVSCOPE_COMMON_VERSION_H_
#define DEVSCOPE_COMMON_VERSION_H_

#include <string>

namespace devscope {

const char* Version();
const char* Revision();
// "devscope VERSION (revision REV)".
std::string VersionString();

}  // namespace devscope

#endif  // DEVSCOPE_COMMON_VERSION_H_
