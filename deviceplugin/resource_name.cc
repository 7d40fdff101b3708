#include "deviceplugin/resource_name.h"

#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace devscope {
namespace {

// What a socket file name keeps of a resource name.
bool IsNameChar(char c) { return absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.'; }

}  // namespace

std::string PluginSocketName(absl::string_view resource) {
  std::string body(resource);
  for (char& c : body) {
    if (!IsNameChar(c)) c = '_';
  }
  // Keeps "<dir>/devscope-<body>.sock" short enough for sockaddr_un (108 bytes) under the usual
  // /var/lib/kubelet/device-plugins directory.
  constexpr size_t kMaxBody = 48;
  if (body.size() > kMaxBody) {
    uint64_t hash = 1469598103934665603ULL;  // FNV-1a: stable across runs and builds
    for (char c : resource) {
      hash ^= static_cast<unsigned char>(c);
      hash *= 1099511628211ULL;
    }
    body = absl::StrCat(body.substr(0, kMaxBody - 17), "-", absl::Hex(hash, absl::kZeroPad16));
  }
  return absl::StrCat("devscope-", body, ".sock");
}

}  // namespace devscope
