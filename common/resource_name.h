// The rule for extended resource names, as the kubelet's Register applies it: for the device
// plugin, and for the names devicedir's `resource` files declare.
#ifndef DEVSCOPE_COMMON_RESOURCE_NAME_H_
#define DEVSCOPE_COMMON_RESOURCE_NAME_H_

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

}  // namespace devscope

#endif  // DEVSCOPE_COMMON_RESOURCE_NAME_H_
