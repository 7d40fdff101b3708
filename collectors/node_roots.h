// Where devscope itself finds the host's /sys and /dev (--path.sysfs, --path.devfs). Under the
// Helm chart they are the host's trees mounted at /host/sys and /host/dev; tests point them at
// fixture trees. Shared by every collector and by the health model.
#ifndef DEVSCOPE_COLLECTORS_NODE_ROOTS_H_
#define DEVSCOPE_COLLECTORS_NODE_ROOTS_H_

#include <string>

#include "absl/strings/string_view.h"
#include "common/options.h"

namespace devscope {

struct NodeRoots {
  std::string sysfs = "/sys";  // --path.sysfs
  std::string devfs = "/dev";  // --path.devfs

  // Where devscope itself looks for a host device node: "/dev/dri/card0" with devfs "/host/dev"
  // gives "/host/dev/dri/card0"; a path outside /dev is looked at where it is. The one place a
  // host path is mapped: what devscope hands out (Allocate) is always the host path itself.
  std::string DevfsPath(absl::string_view host_path) const;
};

void DeclareOptions(OptionDeclarer& d, NodeRoots& o);

}  // namespace devscope

#endif  // DEVSCOPE_COLLECTORS_NODE_ROOTS_H_
