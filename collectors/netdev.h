// The netdev collector: PCI network functions, SR-IOV PFs and VFs, from <sysfs>/class/net and the
// PCI bus (collectors/netdev.cc).
#ifndef DEVSCOPE_COLLECTORS_NETDEV_H_
#define DEVSCOPE_COLLECTORS_NETDEV_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "collectors/collector.h"
#include "collectors/node_roots.h"
#include "common/options.h"

namespace devscope {

// YAML collectors.netdev.*.
struct NetdevOptions {
  // collectors.netdev.advertise: the extended resource name devscope's device plugin advertises
  // NICs and SR-IOV virtual functions (only VFs are advertised) under; empty: devscope only tracks
  // and joins them.
  std::string advertise_resource;
};
void DeclareOptions(OptionDeclarer& d, NetdevOptions& o);

// NotFound when the node has none of these devices.
absl::StatusOr<std::unique_ptr<Collector>> NewNetdevCollector(const NetdevOptions& options,
                                                              const NodeRoots& roots);

}  // namespace devscope

#endif  // DEVSCOPE_COLLECTORS_NETDEV_H_
