// Renders /metrics. The node and device view is a prometheus-cpp Collectable built fresh from the
// current immutable snapshots (so series of pods and devices that are gone vanish with no extra
// code); its text is cached per pair of snapshots, because scrapes outnumber snapshot changes and
// serialising thousands of series costs more than serving bytes. The exporter's own metrics
// (registries of the poller, the plugin, ...) are small and serialised on every scrape, and kept
// apart from the cached view so that the HTTP server can compress the view once (exporter/gzip.h).
#ifndef DEVSCOPE_EXPORTER_METRICS_RENDERER_H_
#define DEVSCOPE_EXPORTER_METRICS_RENDERER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "collectors/collector.h"
#include "common/snapshot_store.h"
#include "exporter/exposition.h"
#include "exporter/node_view.h"
#include "kubelet/pod_resources.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace devscope {

// The node and device view of one NodeView, as metric families.
class NodeViewCollectable : public prometheus::Collectable {
 public:
  explicit NodeViewCollectable(std::shared_ptr<const NodeView> view) : view_(std::move(view)) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::shared_ptr<const NodeView> view_;
};

class MetricsRenderer {
 public:
  // Either store may be null (that side contributes nothing). `self_metrics` are serialised as
  // they are on every call; they must not share family names with the view.
  MetricsRenderer(const SnapshotStore<PodResourcesSnapshot>* pods,
                  const SnapshotStore<DeviceSnapshot>* devices,
                  std::vector<std::shared_ptr<prometheus::Collectable>> self_metrics);

  // The exposition text in its two parts: the cached view as `stable`, the exporter's own
  // metrics as `fresh`. Thread-safe; concurrent scrapes share the view.
  Exposition RenderParts();
  // The whole text, view then self.
  std::shared_ptr<const std::string> Render();

 private:
  std::shared_ptr<const std::string> RenderView(std::shared_ptr<const PodResourcesSnapshot> pods,
                                                std::shared_ptr<const DeviceSnapshot> devices);

  const SnapshotStore<PodResourcesSnapshot>* pods_;
  const SnapshotStore<DeviceSnapshot>* devices_;
  const std::vector<std::shared_ptr<prometheus::Collectable>> self_metrics_;

  absl::Mutex mu_;
  // The snapshots the cached text was rendered from; compared by identity.
  std::shared_ptr<const PodResourcesSnapshot> cached_pods_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const DeviceSnapshot> cached_devices_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const std::string> cached_text_ ABSL_GUARDED_BY(mu_);
};

// Serialises families in the text exposition format (prometheus-cpp's TextSerializer).
std::string SerializeFamilies(const std::vector<prometheus::MetricFamily>& families);

}  // namespace devscope

#endif  // DEVSCOPE_EXPORTER_METRICS_RENDERER_H_
