// GetPreferredAllocation's choice, as a pure function so that it is unit-tested apart from gRPC.
#ifndef DEVSCOPE_DEVICEPLUGIN_PREFERRED_ALLOCATION_H_
#define DEVSCOPE_DEVICEPLUGIN_PREFERRED_ALLOCATION_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "deviceplugin/plugin_options.h"

namespace devscope {

// The NUMA node of a device ID; nullopt when the device reports none or is unknown.
using NumaLookup = std::function<std::optional<int64_t>(const std::string& id)>;

// Chooses `allocation_size` device IDs for one container:
//  1. every ID of `must_include` is in the answer (the kubelet requires it), even one missing from
//     `available`;
//  2. the others come only from `available`, and first from the NUMA nodes the must-include
//     devices already occupy;
//  3. then from as few further NUMA nodes as possible (devices without a NUMA node count as one
//     node of their own, chosen last among equals);
//  4. among choices with equally few nodes, kPack takes the node with the fewest free devices that
//     still fits (keeping big free nodes for big requests), kSpread the node with the most free
//     devices (and, across several nodes, takes from them in turn).
// Within a node, IDs are taken in natural order ("w2" before "w10"). When `available` holds too
// few devices the answer holds all of them: the kubelet treats the answer as advice, and an error
// here would fail the pod's admission outright.
std::vector<std::string> PreferredAllocation(const std::vector<std::string>& available,
                                             const std::vector<std::string>& must_include,
                                             int allocation_size, const NumaLookup& numa_of,
                                             AllocationPolicy policy);

// Natural-order comparison: runs of digits compare as numbers ("w2" < "w10").
bool NaturalLess(const std::string& a, const std::string& b);

}  // namespace devscope

#endif  // DEVSCOPE_DEVICEPLUGIN_PREFERRED_ALLOCATION_H_
