// The plugin socket file name derived from a resource name, and (from common/resource_name.h)
// the validation of extended resource names as the kubelet's Register applies it.
#ifndef DEVSCOPE_DEVICEPLUGIN_RESOURCE_NAME_H_
#define DEVSCOPE_DEVICEPLUGIN_RESOURCE_NAME_H_

#include <string>

#include "absl/strings/string_view.h"
#include "common/resource_name.h"

namespace devscope {

// The plugin socket's file name for `resource`: "devscope-<resource>.sock" with every character
// outside [A-Za-z0-9._-] replaced by '_'. Long names are shortened and given a stable hash suffix
// so the socket path stays within the 108-byte unix socket limit.
std::string PluginSocketName(absl::string_view resource);

}  // namespace devscope

#endif  // DEVSCOPE_DEVICEPLUGIN_RESOURCE_NAME_H_
