// A device's use split among its holders: each process that uses the device (from the collector,
// DeviceReport::processes) counted to its container (from the process attribution,
// kubelet/process_attribution.h), so that pods sharing a GPU each see their own part instead of
// the whole GPU's value (every sharer getting the whole value is what device-level series with
// holder labels say).
//
// For each device quantity the collector reports (memory used, SM, memory-copy, encoder and
// decoder utilisation), a holder's share is the sum over its processes. What no holder's
// processes account for is the unattributed share (empty holder labels): processes whose
// container is unknown, memory the driver holds, utilisation NVML sampled for no process. So
// the shares always sum to the device's value; when the processes' sum exceeds it (their
// samples cover another window than the device's), the holders' shares are scaled down to it.
#ifndef DEVSCOPE_EXPORTER_HOLDER_USAGE_H_
#define DEVSCOPE_EXPORTER_HOLDER_USAGE_H_

#include <array>
#include <cstddef>
#include <optional>
#include <vector>

#include "exporter/exposition.h"
#include "exporter/node_view.h"
#include "kubelet/process_attribution.h"

namespace devscope {

// The quantities split by holder, in the order of kHolderQuantities (holder_usage.cc).
inline constexpr size_t kHolderQuantityCount = 5;

struct HolderShare {
  ContainerName holder;  // all empty: the unattributed share
  uint32_t processes = 0;
  // Per quantity; nullopt when the device does not report it.
  std::array<std::optional<double>, kHolderQuantityCount> values;
};

// The device's shares: the unattributed one first, then each holder in the order met (the
// device's pod-resources holders first, with no processes they have none of its use). Empty when
// the device reports no processes.
std::vector<HolderShare> SplitByHolder(const JoinedDevice& device,
                                       const ProcessAttribution& attribution);

// devscope_device_holder_*: every device's shares, one piece per family. Nothing while
// `attribution` is null or off.
void RenderHolderUsage(const NodeView& view, const ProcessAttribution* attribution,
                       StableTextBuilder& out);

}  // namespace devscope

#endif  // DEVSCOPE_EXPORTER_HOLDER_USAGE_H_
