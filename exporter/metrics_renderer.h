// Renders /metrics. The node and device view is written straight from the current immutable
// snapshots (so series of pods and devices that are gone vanish with no extra code) by the view
// sections (exporter/view_sections.h) with the text writer (exporter/exposition_writer.h). Its
// text is cached per pair of snapshots, because scrapes outnumber snapshot changes, and made of
// pieces, so that a change re-renders and recompresses only the sections and blocks it touches.
// The exporter's own metrics (prometheus-cpp registries of the poller, the plugin, ...) are small
// and serialised by prometheus-cpp on every scrape, after the view, kept apart so that the HTTP
// server can send the view's cached gzip (exporter/gzip.h).
#ifndef DEVSCOPE_EXPORTER_METRICS_RENDERER_H_
#define DEVSCOPE_EXPORTER_METRICS_RENDERER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "collectors/collector.h"
#include "common/snapshot_store.h"
#include "common/warn_once.h"
#include "exporter/dra_match.h"
#include "exporter/exposition.h"
#include "exporter/metrics_options.h"
#include "exporter/node_view.h"
#include "exporter/view_sections.h"
#include "kubelet/pod_resources.h"
#include "kubelet/process_attribution.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace devscope {

class MetricsRenderer {
 public:
  // Either store may be null (that side contributes nothing). `self_metrics` are serialised as
  // they are on every call; they must not share family names with the view.
  // `dra`: the DRA alias rules the join uses (null: none). `attribution`: which container each
  // process using a device runs in, for the devscope_device_holder_* series (null: none).
  MetricsRenderer(const SnapshotStore<PodResourcesSnapshot>* pods,
                  const SnapshotStore<DeviceSnapshot>* devices,
                  std::vector<std::shared_ptr<prometheus::Collectable>> self_metrics,
                  std::shared_ptr<const DraMatcher> dra = nullptr,
                  const SnapshotStore<ProcessAttribution>* attribution = nullptr,
                  const MetricsOptions& options = {});

  // The exposition text in its two parts: the cached view as `stable`, the exporter's own
  // metrics as `fresh`. Thread-safe; concurrent scrapes share the view.
  Exposition RenderParts();
  // The whole text, view then self.
  std::shared_ptr<const std::string> Render();

 private:
  void LogUnmatchedClaimDevices(const NodeView& view) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::shared_ptr<const StableText> RenderView(
      std::shared_ptr<const PodResourcesSnapshot> pods,
      std::shared_ptr<const DeviceSnapshot> devices,
      std::shared_ptr<const ProcessAttribution> attribution);

  const SnapshotStore<PodResourcesSnapshot>* pods_;
  const SnapshotStore<DeviceSnapshot>* devices_;
  const std::vector<std::shared_ptr<prometheus::Collectable>> self_metrics_;
  const std::shared_ptr<const DraMatcher> dra_;
  const SnapshotStore<ProcessAttribution>* attribution_;
  const bool holder_usage_;  // devscope_device_holder_* rendered (holder labels on)

  absl::Mutex mu_;
  // The snapshots the current text was rendered from; compared by identity.
  std::shared_ptr<const PodResourcesSnapshot> cached_pods_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const DeviceSnapshot> cached_devices_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const ProcessAttribution> cached_attribution_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const StableText> current_ ABSL_GUARDED_BY(mu_);
  PodResourcesSection pod_section_ ABSL_GUARDED_BY(mu_);
  DeviceSection device_section_ ABSL_GUARDED_BY(mu_);  // made with the options
  // Each DRA device that matches no tracked device is logged once while it lasts.
  WarnOnce unmatched_warn_ ABSL_GUARDED_BY(mu_){"join: "};
};

// Serialises families in the text exposition format (prometheus-cpp's TextSerializer).
std::string SerializeFamilies(const std::vector<prometheus::MetricFamily>& families);

}  // namespace devscope

#endif  // DEVSCOPE_EXPORTER_METRICS_RENDERER_H_
