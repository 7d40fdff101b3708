// Arbitrary kubelet replies and devicedir files through to /metrics: ListPodResourcesResponse and
// AllocatableResourcesResponse bytes are parsed and converted as the poller does, devices are
// built from devicedir file texts as the devicedir collector does, both are published, joined and
// rendered by the MetricsRenderer, and the text must pass an independent check of the exposition
// format (test/fuzz/exposition_checker.h): valid names, escaped UTF-8 label values, HELP and TYPE
// once per family, no duplicate series. A scrape Prometheus refuses loses the whole node's data.
//
// The renderer re-renders only the pieces a change touches, so the input is two node states, A and
// B: after rendering A, the same renderer renders B, and its text must equal what a fresh renderer
// makes of B.
//
// Input: strings in FuzzedDataProvider's form (a backslash and any other byte ends one). A state
// is: the List reply, the Allocatable reply (absent when empty), then devices, each as its
// collector ("drm" or "devicedir"; anything else ends the list), ID, and its resource, health,
// numa_node, info and metrics.prom files. State A, then state B (absent when nothing is left).
// test/fuzz/make_seeds.py writes seeds in this form.
#include <fuzzer/FuzzedDataProvider.h>

#include <memory>
#include <string>
#include <utility>

#include "collectors/collector.h"
#include "collectors/devicedir_files.h"
#include "collectors/prometheus_text_parser.h"
#include "common/snapshot_store.h"
#include "exporter/metrics_renderer.h"
#include "google/protobuf/stubs/logging.h"
#include "kubelet/convert.h"
#include "kubelet/pod_resources.h"
#include "podresources/v1/api.pb.h"
#include "test/fuzz/exposition_checker.h"
#include "test/fuzz/fuzz_support.h"

namespace devscope {
namespace {

constexpr int kMaxDevices = 8;

// A device from its devicedir files, as DevicedirCollector::ReadDevice builds it; nullopt when
// the collector would skip it.
std::optional<DeviceReport> DeviceFromFiles(FuzzedDataProvider& in) {
  const std::string id = in.ConsumeRandomLengthString(64);
  const std::string resource = in.ConsumeRandomLengthString(256);
  const std::string health = in.ConsumeRandomLengthString(64);
  const std::string numa = in.ConsumeRandomLengthString(32);
  const std::string info = in.ConsumeRandomLengthString(1024);
  const std::string metrics = in.ConsumeRandomLengthString(4096);
  if (!IsValidDeviceId(id)) return std::nullopt;
  absl::StatusOr<std::string> parsed_resource = ParseResourceFile(resource);
  if (!parsed_resource.ok()) return std::nullopt;
  DeviceReport report;
  report.info.id = id;
  report.info.advertise = true;
  report.info.resource = *std::move(parsed_resource);
  report.health = ParseHealthFile(health).value;
  report.info.numa_node = ParseNumaNodeFile(numa).value;
  ApplyInfoFile(ParseInfoFile(info).value, report.info);
  report.samples = ParsePrometheusText(metrics).value;
  return report;
}

struct NodeState {
  std::shared_ptr<const PodResourcesSnapshot> pods;
  std::shared_ptr<const DeviceSnapshot> devices;
};

// nullopt when the List reply is not a message (the client would have failed the call).
std::optional<NodeState> ConsumeState(FuzzedDataProvider& in) {
  v1::ListPodResourcesResponse list;
  if (!list.ParseFromString(in.ConsumeRandomLengthString())) return std::nullopt;
  auto pods = std::make_shared<PodResourcesSnapshot>();
  pods->pods = ConvertPods(list);
  const std::string allocatable_bytes = in.ConsumeRandomLengthString();
  v1::AllocatableResourcesResponse allocatable;
  if (!allocatable_bytes.empty() && allocatable.ParseFromString(allocatable_bytes)) {
    pods->allocatable = ConvertAllocatable(allocatable);
  }
  auto devices = std::make_shared<DeviceSnapshot>();
  devices->collectors.push_back({.collector = "devicedir", .up = true});
  devices->collectors.push_back({.collector = "drm", .up = true});
  for (int i = 0; i < kMaxDevices; ++i) {
    const std::string collector = in.ConsumeRandomLengthString(16);
    if (collector != "drm" && collector != "devicedir") break;
    if (std::optional<DeviceReport> device = DeviceFromFiles(in)) {
      devices->collectors[collector == "drm" ? 1 : 0].devices.push_back(std::move(*device));
    }
  }
  return NodeState{std::move(pods), std::move(devices)};
}

// Renders `state` with `renderer` (after whatever it rendered before) and checks the text.
std::string RenderChecked(MetricsRenderer& renderer, SnapshotStore<PodResourcesSnapshot>& pods,
                          SnapshotStore<DeviceSnapshot>& devices, const NodeState& state) {
  pods.Publish(state.pods);
  devices.Publish(state.devices);
  std::string text = *renderer.Render();
  if (const absl::Status valid = CheckExposition(text); !valid.ok()) {
    FuzzFail("pod_resources_view_fuzzer", std::string(valid.message()) + "\n" + text);
  }
  return text;
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
  const std::optional<NodeState> a = ConsumeState(in);
  if (!a.has_value()) return 0;
  SnapshotStore<PodResourcesSnapshot> pods;
  SnapshotStore<DeviceSnapshot> devices;
  MetricsRenderer renderer(&pods, &devices, {});
  RenderChecked(renderer, pods, devices, *a);
  if (in.remaining_bytes() == 0) return 0;
  const std::optional<NodeState> b = ConsumeState(in);
  if (!b.has_value()) return 0;
  const std::string after_a = RenderChecked(renderer, pods, devices, *b);
  SnapshotStore<PodResourcesSnapshot> fresh_pods;
  SnapshotStore<DeviceSnapshot> fresh_devices;
  MetricsRenderer fresh(&fresh_pods, &fresh_devices, {});
  const std::string from_scratch = RenderChecked(fresh, fresh_pods, fresh_devices, *b);
  if (after_a != from_scratch) {
    FuzzFail("pod_resources_view_fuzzer", "B rendered after A differs from B rendered afresh:\n" +
                                              after_a + "----\n" + from_scratch);
  }
  return 0;
}
