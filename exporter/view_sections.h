// The sections of the node and device view's text, each written with ExpositionWriter into pieces
// of a StableTextBuilder (exporter/exposition.h):
//  - the pod-resources view, one piece per family, re-rendered only when the pod-resources
//    snapshot changes;
//  - the device view (devscope_device_info, devscope_device_healthy, every telemetry family),
//    one piece per family per block of devices; a block is rendered again only when one of its
//    devices changed (holders, identity, health or samples), so that a pod change re-renders and
//    recompresses only the blocks whose holders it changed, and a collector pass only the blocks
//    whose values moved;
//  - the collectors' status, one piece per family.
// Each section object keeps what it needs between renders (scratch buffers, the last view); one
// thread at a time (the renderer holds its lock).
#ifndef DEVSCOPE_EXPORTER_VIEW_SECTIONS_H_
#define DEVSCOPE_EXPORTER_VIEW_SECTIONS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "collectors/collector.h"
#include "exporter/exposition.h"
#include "exporter/exposition_writer.h"
#include "exporter/node_view.h"
#include "kubelet/pod_resources.h"

namespace devscope {

// Piece keys: the section in the top byte, then the family's position in its section, then the
// block of devices.
enum class ViewSection : uint64_t {
  kPodResources = 1,
  kDevices = 2,
  kCollectors = 3,
  kUnmatchedClaimDevices = 4,
  kHolderUsage = 5
};
constexpr uint64_t kSectionMask = uint64_t{0xff} << 56;
constexpr uint64_t kBlockMask = (uint64_t{1} << 28) - 1;
constexpr uint64_t SectionKey(ViewSection section) { return static_cast<uint64_t>(section) << 56; }
constexpr uint64_t PieceKey(ViewSection section, uint64_t family, uint64_t block) {
  return SectionKey(section) | (family << 28) | block;
}

// Pods are written in namespace and name order (the kubelet's own order is a map's), and the
// families with a series per container are cut into pieces of about 16 pods, so that a pod that
// comes or goes leaves the deflate data of the other pieces as it was.
class PodResourcesSection {
 public:
  void Render(const PodResourcesSnapshot& snapshot, StableTextBuilder& out);

 private:
  void RenderAllocatable(const AllocatableResources& allocatable, StableTextBuilder& out);
  // Per-container families, one method each, in the order they are written.
  void RenderContainers(const PodResourcesSnapshot& snapshot, StableTextBuilder& out);
  void RenderContainerDevices(ExpositionWriter& writer, StableTextBuilder& out);
  void RenderContainerCpus(ExpositionWriter& writer, StableTextBuilder& out);
  void RenderContainerMemory(ExpositionWriter& writer, StableTextBuilder& out);
  void RenderContainerClaims(ExpositionWriter& writer, StableTextBuilder& out);
  // Starts a container's series: its holder labels in holder_, a fresh scope for duplicates.
  void StartHolder(ExpositionWriter& writer, const PodResources& pod, absl::string_view container);
  void RenderAllocated(const PodResourcesSnapshot& snapshot, StableTextBuilder& out);
  // Adds n to resource's count in per_resource_.
  void AddPerResource(absl::string_view resource, int64_t n);
  void SortPods(const PodResourcesSnapshot& snapshot);
  // Calls write_pod for every pod in order, ending a piece of `family` where one starts.
  template <typename WritePod>
  void PerPodPieces(uint64_t family, StableTextBuilder& out, WritePod write_pod);

  std::vector<const PodResources*> sorted_;
  std::vector<std::pair<size_t, uint64_t>> piece_starts_;  // first pod, piece key's block
  // Scratch, kept for its capacity.
  std::string holder_;  // namespace, pod and container labels of the container being written
  std::string numa_;
  std::vector<int64_t> cpus_;
  absl::flat_hash_set<std::pair<absl::string_view, absl::string_view>> allocated_;
  std::vector<std::pair<absl::string_view, int64_t>> per_resource_;
};

// Telemetry families are the samples' names in first-seen order; a name reported with a second
// type keeps the first. Samples whose name is not a devscope_device_ metric name (or is one of the
// two the section writes itself), or whose labels are not valid label names or are one of
// devscope's (resource, device, namespace, pod, container), are dropped. A device listed twice
// (same resource and ID, from two collectors say) is written once, the first time.
class DeviceSection {
 public:
  // Devices per block: small enough that a pod change recompresses little, large enough that the
  // pieces still compress well.
  static constexpr size_t kBlock = 64;

  // `holder_labels` false: every device's series without holder labels, held or not
  // (--no-metrics.holder-labels).
  explicit DeviceSection(bool holder_labels = true) : holder_labels_(holder_labels) {}

  void Render(std::shared_ptr<const NodeView> view, StableTextBuilder& out);

 private:
  struct Family {
    absl::string_view name;
    absl::string_view help;
    Sample::Kind kind;
    bool operator==(const Family&) const = default;
  };
  // Where one device's label sets (one per holder, or one without holder labels) lie in labels_.
  struct LabelSets {
    uint32_t first;
    uint32_t count;
  };

  void FindFamilies(const NodeView& view);
  void MarkDirtyBlocks(const NodeView& view, bool same_families);
  void MakeLabelSets(const NodeView& view);
  void RenderBlock(const NodeView& view, size_t family, size_t block, ExpositionWriter& writer);

  const bool holder_labels_;
  std::shared_ptr<const NodeView> last_view_;
  std::vector<Family> families_;  // telemetry families, views into the view's device snapshot
  std::vector<Family> last_families_;
  // For every device's samples in order (device i's start at sample_start_[i]): the telemetry
  // family it belongs to, or -1 when it is dropped.
  std::vector<int32_t> sample_family_;
  std::vector<uint32_t> sample_start_;
  std::vector<int32_t> family_by_position_;  // scratch for FindFamilies
  std::vector<bool> skip_;                   // a repeated device
  std::vector<bool> last_skip_;
  // Per block: whether devscope_device_info, and the series with holder labels, must be rendered.
  std::vector<bool> identity_dirty_;
  std::vector<bool> series_dirty_;
  std::string labels_;                                       // label sets, rendered once per render
  std::vector<std::pair<uint32_t, uint32_t>> label_ranges_;  // offset, size in labels_
  std::vector<LabelSets> label_sets_;                        // per device
  // Scratch, kept for its capacity.
  absl::flat_hash_map<absl::string_view, int32_t> family_index_;
  absl::flat_hash_set<std::pair<absl::string_view, absl::string_view>> seen_devices_;
  std::string label_set_;
  std::vector<bool> used_;  // per telemetry family: has a series
};

// devscope_dynamic_resource_unmatched_devices: the DRA devices the join matched to no tracked
// device, per driver; one piece, nothing when there are none.
void RenderUnmatchedClaimDevices(const NodeView& view, StableTextBuilder& out);

// devscope_collector_up, _duration_seconds and _parse_errors: one piece per family.
void RenderCollectorStatus(const DeviceSnapshot& devices, StableTextBuilder& out);

}  // namespace devscope

#endif  // DEVSCOPE_EXPORTER_VIEW_SECTIONS_H_
