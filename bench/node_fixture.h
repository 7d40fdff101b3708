// The node the performance issue names, shared by the benchmarks: 250 pods x 4 containers x 4
// devices in pod-resources (4,000 device IDs, dev-0 to dev-3999, on 4 NUMA nodes; a List reply
// of about 275 KB), and 1,024 tracked devices (the first 1,024 IDs, so 1,024 telemetry sets carry
// holder labels), each with 6 telemetry samples, as a devicedir on disk or as the snapshot the
// devicedir collector makes of it.
#ifndef DEVSCOPE_BENCH_NODE_FIXTURE_H_
#define DEVSCOPE_BENCH_NODE_FIXTURE_H_

#include <memory>
#include <string>
#include <vector>

#include "collectors/collector.h"
#include "kubelet/pod_resources.h"
#include "podresources/v1/api.pb.h"

namespace devscope {

constexpr int kBenchPods = 250, kBenchContainers = 4, kBenchDevicesPerContainer = 4;
constexpr int kBenchTrackedDevices = 1024;

// The pods; with `arrivals` > 0, that many more pods ("arrival-K", one container) each holding a
// tracked device (dev-K, now shared) and three untracked ones: "a pod arrived".
std::vector<v1::PodResources> BenchFleet(int arrivals = 0);
// The same as a snapshot.
std::shared_ptr<PodResourcesSnapshot> BenchPodsSnapshot(int arrivals = 0);

// Writes the devicedir of the tracked devices under `path`; `value` moves the telemetry.
void WriteBenchDevicedir(const std::string& path, double value = 0);
// The snapshot the devicedir collector makes of it.
std::shared_ptr<DeviceSnapshot> BenchDeviceSnapshot(double value = 0);

}  // namespace devscope

#endif  // DEVSCOPE_BENCH_NODE_FIXTURE_H_
