// The container runtime's ListContainers reply (kubelet/container_runtime_client.h) through to
// /metrics: the reply's containers name, by their labels, the holders of the processes that use a
// device (devscope_device_holder_*), so whatever a runtime (or whoever set a container's labels)
// puts there reaches the scrape. The reply bytes are parsed and converted as the client does,
// the containers keyed by ID as the attributor keeps them, the device's processes attributed to
// them, and the node rendered with the pod-resources picture beside it. Checked: every container
// kept has an ID and a pod; the text passes the exposition check (test/fuzz/exposition_checker.h);
// a device's holder shares of each quantity sum to the device's value, none negative, and count
// every process once.
//
// Input: strings in FuzzedDataProvider's form (a backslash and any other byte ends one): the
// ListContainers reply, then a ListPodResourcesResponse; the processes and the device's values
// come from the input's end (FuzzedDataProvider's integers). make_seeds.py writes seeds.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "collectors/collector.h"
#include "common/snapshot_store.h"
#include "cri/v1/api.pb.h"
#include "exporter/holder_usage.h"
#include "exporter/join.h"
#include "exporter/metrics_renderer.h"
#include "google/protobuf/stubs/logging.h"
#include "kubelet/container_runtime_client.h"
#include "kubelet/convert.h"
#include "kubelet/process_attribution.h"
#include "podresources/v1/api.pb.h"
#include "test/fuzz/exposition_checker.h"
#include "test/fuzz/fuzz_support.h"

namespace devscope {
namespace {

constexpr char kTarget[] = "container_runtime_reply_fuzzer";
constexpr int kMaxProcesses = 8;

// The device's own values of the quantities split by holder, in kHolderQuantities' order
// (exporter/holder_usage.cc).
constexpr const char* kDeviceSamples[] = {
    "devscope_device_memory_used_bytes", "devscope_device_utilization_ratio",
    "devscope_device_memory_copy_utilization_ratio", "devscope_device_encoder_utilization_ratio",
    "devscope_device_decoder_utilization_ratio"};

void CheckContainers(const runtime::v1::ListContainersResponse& reply,
                     const std::vector<RuntimeContainer>& containers) {
  if (containers.size() > static_cast<size_t>(reply.containers_size())) {
    FuzzFail(kTarget, "more containers than the reply has");
  }
  for (const RuntimeContainer& c : containers) {
    if (c.id.empty() || c.pod.empty()) FuzzFail(kTarget, "kept a container without ID or pod");
  }
}

std::optional<double> Ratio(FuzzedDataProvider& in) {
  if (!in.ConsumeBool()) return std::nullopt;
  return in.ConsumeProbability<double>();
}

// One device whose processes and values come from `in`, and the attribution of its processes
// to `by_id`'s containers (or to none).
std::shared_ptr<DeviceSnapshot> ConsumeDevice(
    FuzzedDataProvider& in, const std::vector<RuntimeContainer>& containers,
    const absl::flat_hash_map<std::string, ContainerName>& by_id, ProcessAttribution& attribution) {
  DeviceReport report;
  report.info.id = "gpu0";
  report.info.resource = "nvidia.com/gpu";
  report.info.advertise = true;
  const int processes = in.ConsumeIntegralInRange(0, kMaxProcesses);
  for (int i = 0; i < processes; ++i) {
    DeviceProcess p;
    p.pid = static_cast<uint32_t>(in.ConsumeIntegralInRange(1, 2 * kMaxProcesses));
    if (in.ConsumeBool()) p.memory_used_bytes = in.ConsumeIntegralInRange<uint64_t>(0, 1ULL << 40);
    p.sm_utilization_ratio = Ratio(in);
    p.memory_utilization_ratio = Ratio(in);
    p.encoder_utilization_ratio = Ratio(in);
    p.decoder_utilization_ratio = Ratio(in);
    const size_t which = in.ConsumeIntegralInRange<size_t>(0, containers.size());
    if (which < containers.size()) attribution.containers[p.pid] = by_id.at(containers[which].id);
    report.processes.push_back(p);
  }
  for (size_t q = 0; q < kHolderQuantityCount; ++q) {
    if (!in.ConsumeBool()) continue;
    const double value =
        q == 0 ? static_cast<double>(in.ConsumeIntegralInRange<uint64_t>(0, 1ULL << 41))
               : in.ConsumeProbability<double>();  // bytes, then ratios
    report.samples.push_back(Sample{.name = kDeviceSamples[q], .value = value});
  }
  auto devices = std::make_shared<DeviceSnapshot>();
  devices->collectors.push_back({.collector = "nvml", .up = true});
  devices->collectors[0].devices.push_back(std::move(report));
  return devices;
}

// Each quantity's shares sum to the device's value, none negative; every process counted once.
// A device that reports no processes has no shares.
void CheckShares(const JoinedDevice& device, const std::vector<HolderShare>& shares) {
  if (device.report->processes.empty()) {
    if (!shares.empty()) FuzzFail(kTarget, "shares of a device without processes");
    return;
  }
  uint32_t counted = 0;
  for (const HolderShare& s : shares) counted += s.processes;
  if (counted != device.report->processes.size()) FuzzFail(kTarget, "processes miscounted");
  for (size_t q = 0; q < kHolderQuantityCount; ++q) {
    std::optional<double> total;
    for (const Sample& s : device.report->samples) {
      if (s.name == kDeviceSamples[q]) total = s.value;
    }
    double sum = 0;
    for (const HolderShare& s : shares) {
      if (s.values[q].has_value() != total.has_value()) FuzzFail(kTarget, "a share is missing");
      if (!total.has_value()) continue;
      if (*s.values[q] < 0) FuzzFail(kTarget, absl::StrCat("negative share of ", q));
      sum += *s.values[q];
    }
    if (total.has_value() && std::abs(sum - *total) > 1e-9 * std::max(1.0, *total)) {
      FuzzFail(kTarget, absl::StrCat("shares of ", q, " sum to ", sum, ", not ", *total));
    }
  }
}

}  // namespace
}  // namespace devscope

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  devscope::QuietLogs();
  // Protobuf logs every string field that is not UTF-8 (and refuses the message).
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace devscope;
  FuzzedDataProvider in(data, size);
  runtime::v1::ListContainersResponse reply;
  if (!reply.ParseFromString(in.ConsumeRandomLengthString())) return 0;  // the call would fail
  const std::vector<RuntimeContainer> containers = ContainersFromReply(reply);
  CheckContainers(reply, containers);
  // As the attributor keeps the last list: by ID, a later duplicate replacing an earlier one.
  absl::flat_hash_map<std::string, ContainerName> by_id;
  for (const RuntimeContainer& c : containers)
    by_id[c.id] = ContainerName{c.ns, c.pod, c.container};

  v1::ListPodResourcesResponse list;
  auto pods = std::make_shared<PodResourcesSnapshot>();
  if (list.ParseFromString(in.ConsumeRandomLengthString())) pods->pods = ConvertPods(list);

  auto attribution = std::make_shared<ProcessAttribution>();
  attribution->up = true;
  std::shared_ptr<const DeviceSnapshot> devices =
      ConsumeDevice(in, containers, by_id, *attribution);
  attribution->devices = devices;

  const std::shared_ptr<const NodeView> view = Join(pods, devices);
  for (const JoinedDevice& device : view->devices) {
    CheckShares(device, SplitByHolder(device, *attribution));
  }
  SnapshotStore<PodResourcesSnapshot> pod_store;
  SnapshotStore<DeviceSnapshot> device_store;
  SnapshotStore<ProcessAttribution> attribution_store;
  pod_store.Publish(pods);
  device_store.Publish(devices);
  attribution_store.Publish(attribution);
  MetricsRenderer renderer(&pod_store, &device_store, {}, nullptr, &attribution_store);
  const std::string text = *renderer.Render();
  if (const absl::Status valid = CheckExposition(text); !valid.ok()) {
    FuzzFail(kTarget, std::string(valid.message()) + "\n" + text);
  }
  return 0;
}
