// Validation of extended resource names as the kubelet's Register applies it, and the plugin
// socket file name derived from a resource name.
#ifndef DEVSCOPE_DEVICEPLUGIN_RESOURCE_NAME_H_
#define DEVSCOPE_DEVICEPLUGIN_RESOURCE_NAME_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace devscope {

// OK when the kubelet would accept `name` as an extended resource in Register; InvalidArgument
// naming the rule broken otherwise. The rules (kubelet IsExtendedResourceName):
//  - exactly one '/', splitting a prefix and a name part;
//  - the prefix is a DNS-1123 subdomain (lower-case alphanumerics, '-', '.'); because the kubelet
//    checks "requests." + name, the prefix may be at most 253 - 9 characters;
//  - it is not a native resource: the name must not contain "kubernetes.io/" (so kubernetes.io
//    and every *.kubernetes.io prefix are refused, as the kubelet does);
//  - the name part is 1..63 characters of [A-Za-z0-9._-], starting and ending alphanumeric;
//  - the whole name must not start with "requests.".
absl::Status ValidateResourceName(absl::string_view name);

// The plugin socket's file name for `resource`: "devscope-<resource>.sock" with every character
// outside [A-Za-z0-9._-] replaced by '_'. Long names are shortened and given a stable hash suffix so
// the socket path stays within the 108-byte unix socket limit.
std::string PluginSocketName(absl::string_view resource);

}  // namespace devscope

#endif  // DEVSCOPE_DEVICEPLUGIN_RESOURCE_NAME_H_
