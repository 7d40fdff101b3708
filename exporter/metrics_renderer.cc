#include "exporter/metrics_renderer.h"

#include <iterator>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "exporter/holder_usage.h"
#include "exporter/join.h"
#include "prometheus/text_serializer.h"

namespace devscope {

std::string SerializeFamilies(const std::vector<prometheus::MetricFamily>& families) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return std::move(out).str();
}

MetricsRenderer::MetricsRenderer(const SnapshotStore<PodResourcesSnapshot>* pods,
                                 const SnapshotStore<DeviceSnapshot>* devices,
                                 std::vector<std::shared_ptr<prometheus::Collectable>> self_metrics,
                                 std::shared_ptr<const DraMatcher> dra,
                                 const SnapshotStore<ProcessAttribution>* attribution,
                                 const MetricsOptions& options)
    : pods_(pods),
      devices_(devices),
      self_metrics_(std::move(self_metrics)),
      dra_(std::move(dra)),
      attribution_(attribution),
      holder_usage_(options.holder_labels),
      device_section_(options.holder_labels) {}

void MetricsRenderer::LogUnmatchedClaimDevices(const NodeView& view) {
  for (const ClaimDevice* device : view.unmatched_claim_devices) {
    unmatched_warn_.Warn(
        absl::StrCat(device->driver, "/", device->pool, "/", device->device),
        absl::StrCat(
            "DRA device matches no tracked device, its telemetry carries no holder: driver=",
            device->driver, " pool=", device->pool, " device=", device->device,
            " claim=", device->claim_namespace, "/", device->claim_name));
  }
  unmatched_warn_.ForgetAbsent();
}

std::shared_ptr<const StableText> MetricsRenderer::RenderView(
    std::shared_ptr<const PodResourcesSnapshot> pods, std::shared_ptr<const DeviceSnapshot> devices,
    std::shared_ptr<const ProcessAttribution> attribution) {
  // Rendering under the lock makes concurrent scrapes of a new snapshot wait for one render
  // instead of all rendering the same text.
  absl::MutexLock lock(&mu_);
  const bool have_text = current_ != nullptr;
  if (have_text && cached_pods_ == pods && cached_devices_ == devices &&
      cached_attribution_ == attribution) {
    return current_;
  }

  StableTextBuilder out(current_);

  std::shared_ptr<const NodeView> view = Join(pods, devices, dra_.get());
  if (have_text && cached_pods_ == pods) {
    out.CopyPieces(kSectionMask, SectionKey(ViewSection::kPodResources));
  } else {
    pod_section_.Render(*view->pods, out);
  }
  device_section_.Render(view, out);
  RenderUnmatchedClaimDevices(*view, out);
  LogUnmatchedClaimDevices(*view);
  // The per-holder split is holder labels by nature: off with them (--no-metrics.holder-labels).
  if (holder_usage_) RenderHolderUsage(*view, attribution.get(), out);
  if (have_text && cached_devices_ == devices) {
    out.CopyPieces(kSectionMask, SectionKey(ViewSection::kCollectors));
  } else {
    RenderCollectorStatus(*view->devices_source, out);
  }

  current_ = out.Finish();
  cached_pods_ = std::move(pods);
  cached_devices_ = std::move(devices);
  cached_attribution_ = std::move(attribution);
  return current_;
}

Exposition MetricsRenderer::RenderParts() {
  Exposition parts;
  parts.stable = RenderView(pods_ != nullptr ? pods_->Current() : nullptr,
                            devices_ != nullptr ? devices_->Current() : nullptr,
                            attribution_ != nullptr ? attribution_->Current() : nullptr);
  std::vector<prometheus::MetricFamily> self;
  for (const auto& collectable : self_metrics_) {
    auto families = collectable->Collect();
    std::move(families.begin(), families.end(), std::back_inserter(self));
  }
  parts.fresh = SerializeFamilies(self);
  return parts;
}

std::shared_ptr<const std::string> MetricsRenderer::Render() {
  Exposition parts = RenderParts();
  auto text = std::make_shared<std::string>();
  text->reserve(parts.stable->text().size() + parts.fresh.size());
  text->append(parts.stable->text());
  text->append(parts.fresh);
  return text;
}

}  // namespace devscope
