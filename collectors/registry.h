// The explicit list of collectors (no static initialisers): which exist, how each is made, and
// which are enabled by the configuration. Also the source of the --collector.* flags' names.
#ifndef DEVSCOPE_COLLECTORS_REGISTRY_H_
#define DEVSCOPE_COLLECTORS_REGISTRY_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "collectors/collector.h"
#include "common/config.h"

namespace devscope {

// Each collector file defines its factory. A hardware collector returns NotFound when its
// hardware (or library) is absent: in auto mode the registry then skips it quietly; when it is
// forced on (--collector.NAME) the registry still runs it, reporting collector_up 0 and the reason.
absl::StatusOr<std::unique_ptr<Collector>> NewDevicedirCollector(const Config& config);
absl::StatusOr<std::unique_ptr<Collector>> NewDrmCollector(const Config& config);
absl::StatusOr<std::unique_ptr<Collector>> NewNetdevCollector(const Config& config);
absl::StatusOr<std::unique_ptr<Collector>> NewNvmlCollector(const Config& config);

// For a hardware collector's factory: runs one pass of `collector` and keeps it when the pass
// finds a device; NotFound("no " + what) when it finds none, the pass's error when it fails.
absl::StatusOr<std::unique_ptr<Collector>> KeepIfItFindsDevices(
    std::unique_ptr<Collector> collector, absl::string_view what);

// The collectors that `config` enables, in a fixed order (devicedir, nvml, drm, netdev).
std::vector<std::unique_ptr<Collector>> MakeEnabledCollectors(const Config& config);

}  // namespace devscope

#endif  // DEVSCOPE_COLLECTORS_REGISTRY_H_
