#include "collectors/node_roots.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace devscope {

std::string NodeRoots::DevfsPath(absl::string_view host_path) const {
  if (host_path == "/dev") return devfs;
  if (absl::StartsWith(host_path, "/dev/")) return absl::StrCat(devfs, host_path.substr(4));
  return std::string(host_path);
}

void DeclareOptions(OptionDeclarer& d, NodeRoots& o) {
  d.Flag("path.sysfs", o.sysfs, "sysfs root: where the collectors read the host's /sys")
      .Group("Paths")
      .MustBeDirectory();
  d.Flag("path.devfs", o.devfs, "devfs root: where devscope looks for the host's /dev nodes")
      .Group("Paths")
      .MustBeDirectory();
}

}  // namespace devscope
