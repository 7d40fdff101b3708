// CPU lists as the kernel's cpuset files and the kubelet's CPU manager write them.
#ifndef DEVSCOPE_KUBELET_CPUSET_H_
#define DEVSCOPE_KUBELET_CPUSET_H_

#include <cstdint>
#include <string>
#include <vector>

namespace devscope {

// A CPU list in cpuset notation, sorted, de-duplicated and merged into ranges:
// {8, 0, 1, 2, 3} -> "0-3,8"; {} -> "".
std::string FormatCpuSet(std::vector<int64_t> cpus);

}  // namespace devscope

#endif  // DEVSCOPE_KUBELET_CPUSET_H_
