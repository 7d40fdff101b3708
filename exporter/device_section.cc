// The device view: every tracked device's identity, health and telemetry, with holder labels, and
// the collectors' status.
#include <algorithm>
#include <cmath>
#include <map>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "common/label_names.h"
#include "exporter/view_sections.h"

namespace devscope {
namespace {

// Families 0 and 1 of the section; telemetry families follow.
constexpr size_t kInfoFamily = 0;
constexpr size_t kHealthyFamily = 1;
constexpr size_t kFirstTelemetryFamily = 2;
// A sample of no telemetry family: dropped.
constexpr int32_t kNoFamily = -1;
// The block number of a family's HELP and TYPE piece.
constexpr uint64_t kHeaderBlock = kBlockMask;

uint64_t Key(size_t family, uint64_t block) {
  return PieceKey(ViewSection::kDevices, family, block);
}

// Help texts of the device metrics the contract names; others get a generic one.
absl::string_view DeviceHelp(const Sample& sample) {
  static const auto* const kHelp = new absl::flat_hash_map<absl::string_view, absl::string_view>{
      {"devscope_device_utilization_ratio", "Device utilization, 0 to 1."},
      {"devscope_device_memory_used_bytes", "Device memory in use."},
      {"devscope_device_memory_total_bytes", "Device memory in total."},
      {"devscope_device_temperature_celsius", "Device temperature."},
      {"devscope_device_power_watts", "Device power draw."},
      {"devscope_device_energy_joules_total", "Energy the device consumed."},
      {"devscope_device_errors_total", "Device errors, by kind."},
      {"devscope_device_network_receive_bytes_total", "Bytes received."},
      {"devscope_device_network_transmit_bytes_total", "Bytes transmitted."},
      {"devscope_device_link_up", "1 when the link is up."},
      {"devscope_device_clock_hertz", "Device clock now, by clock domain."},
      {"devscope_device_clock_max_hertz", "Highest the device clock can run, by clock domain."},
      {"devscope_device_clock_event_reason_active",
       "1 while the reason holds the device's clocks down (throttling), 0 when not."},
      {"devscope_device_memory_temperature_celsius", "Device memory temperature."},
      {"devscope_device_memory_copy_utilization_ratio",
       "Share of time device memory was read or written, 0 to 1."},
      {"devscope_device_encoder_utilization_ratio", "Video encoder utilization, 0 to 1."},
      {"devscope_device_decoder_utilization_ratio", "Video decoder utilization, 0 to 1."},
      {"devscope_device_memory_free_bytes", "Device memory not allocated."},
      {"devscope_device_memory_reserved_bytes", "Device memory the driver and firmware reserve."},
      {"devscope_device_pcie_replays_total", "PCIe link-level replays."},
      {"devscope_device_pcie_transmit_bytes_per_second", "PCIe bytes sent per second, now."},
      {"devscope_device_pcie_receive_bytes_per_second", "PCIe bytes received per second, now."},
      {"devscope_device_nvlink_transmit_bytes_total", "Data bytes sent on the NVLink link."},
      {"devscope_device_nvlink_receive_bytes_total", "Data bytes received on the NVLink link."},
      {"devscope_device_nvlink_errors_total", "NVLink data link errors, by link and kind."},
      {"devscope_device_retired_pages", "Device memory pages retired, by cause."},
      {"devscope_device_retired_pages_pending",
       "1 when pages wait to be retired at the next driver reload."},
      {"devscope_device_remapped_rows", "Device memory rows remapped, by cause."},
      {"devscope_device_row_remap_pending", "1 when a row remap waits for a GPU reset."},
      {"devscope_device_row_remap_failed",
       "1 when a row remap failed: the device needs servicing."},
      {"devscope_device_power_limit_watts", "Power limit in force."},
      {"devscope_device_driver_info", "The device driver's versions (1 per device)."},
      {"devscope_device_xid_errors_total", "XID errors since devscope started, by XID."},
      {"devscope_device_last_xid_timestamp_seconds",
       "When the latest XID came, labelled with its code."},
  };
  if (!sample.help.empty()) return sample.help;
  auto it = kHelp->find(sample.name);
  return it != kHelp->end() ? it->second : "Device telemetry reported by a collector.";
}

// Whether a metric name can be a telemetry family.
bool IsTelemetryName(absl::string_view name) {
  return absl::StartsWith(name, "devscope_device_") && name != "devscope_device_info" &&
         name != "devscope_device_healthy" && IsValidMetricName(name);
}

// Whether a sample's own labels can be written.
bool HasWritableLabels(const Sample& sample) {
  for (const auto& [name, value] : sample.labels) {
    if (IsReservedDeviceLabel(name) || !IsValidLabelName(name)) return false;
  }
  return true;
}

bool SameValue(double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); }

// Whether devscope_device_info of the two is the same.
bool SameIdentity(const JoinedDevice& a, const JoinedDevice& b) {
  const DeviceInfo& x = a.report->info;
  const DeviceInfo& y = b.report->info;
  return a.resource == b.resource && a.collector == b.collector && x.id == y.id &&
         x.vendor == y.vendor && x.model == y.model && x.numa_node == y.numa_node &&
         x.pci_address == y.pci_address;
}

// Whether the series with holder labels (health and telemetry) of the two are the same, given the
// same telemetry families; holders count when `holder_labels`.
bool SameSeries(const JoinedDevice& a, const JoinedDevice& b, bool holder_labels) {
  if (a.resource != b.resource || a.report->info.id != b.report->info.id ||
      (holder_labels && a.holders != b.holders) ||
      a.report->health.healthy != b.report->health.healthy) {
    return false;
  }
  const std::vector<Sample>& x = a.report->samples;
  const std::vector<Sample>& y = b.report->samples;
  if (x.size() != y.size()) return false;
  for (size_t j = 0; j < x.size(); ++j) {
    if (x[j].name != y[j].name || x[j].kind != y[j].kind || !SameValue(x[j].value, y[j].value) ||
        x[j].labels != y[j].labels) {
      return false;
    }
  }
  return true;
}

}  // namespace

void DeviceSection::FindFamilies(const NodeView& view) {
  families_.clear();
  family_index_.clear();
  sample_family_.clear();
  sample_start_.clear();
  // Devices of one collector mostly list the same samples in the same order: the family of the
  // previous device's sample at the same position is tried before the map.
  std::vector<int32_t>& by_position = family_by_position_;
  by_position.clear();
  for (const JoinedDevice& device : view.devices) {
    sample_start_.push_back(static_cast<uint32_t>(sample_family_.size()));
    const std::vector<Sample>& samples = device.report->samples;
    if (by_position.size() < samples.size()) by_position.resize(samples.size(), kNoFamily);
    for (size_t j = 0; j < samples.size(); ++j) {
      const Sample& sample = samples[j];
      int32_t family = by_position[j];
      if (family < 0 || families_[family].name != sample.name) {
        auto [it, inserted] = family_index_.try_emplace(sample.name, kNoFamily);
        if (inserted && IsTelemetryName(sample.name)) {
          it->second = static_cast<int32_t>(families_.size());
          families_.push_back(Family{sample.name, DeviceHelp(sample), sample.kind});
        }
        family = it->second;
        if (family >= 0) by_position[j] = family;
      }
      // A name reported with a second type keeps the first.
      if (family >= 0 && (families_[family].kind != sample.kind || !HasWritableLabels(sample))) {
        family = kNoFamily;
      }
      sample_family_.push_back(family);
    }
  }
  sample_start_.push_back(static_cast<uint32_t>(sample_family_.size()));
}

void DeviceSection::MarkDirtyBlocks(const NodeView& view, bool same_families) {
  const size_t blocks = (view.devices.size() + kBlock - 1) / kBlock;
  // Devices are compared by position: when devices came or went, everything is rendered.
  const bool comparable = last_view_ != nullptr &&
                          last_view_->devices.size() == view.devices.size() && last_skip_ == skip_;
  identity_dirty_.assign(blocks, !comparable);
  series_dirty_.assign(blocks, !comparable || !same_families);
  if (!comparable) return;
  // The same device snapshot: only holders and resources can differ.
  const bool same_source = last_view_->devices_source == view.devices_source;
  for (size_t i = 0; i < view.devices.size(); ++i) {
    const JoinedDevice& now = view.devices[i];
    const JoinedDevice& before = last_view_->devices[i];
    const size_t block = i / kBlock;
    if (!identity_dirty_[block] && !SameIdentity(now, before)) identity_dirty_[block] = true;
    if (!series_dirty_[block] &&
        (same_source ? now.resource != before.resource ||
                           (holder_labels_ && now.holders != before.holders)
                     : !SameSeries(now, before, holder_labels_))) {
      series_dirty_[block] = true;
    }
  }
}

void DeviceSection::MakeLabelSets(const NodeView& view) {
  labels_.clear();
  label_ranges_.clear();
  label_sets_.assign(view.devices.size(), LabelSets{0, 0});
  std::string& set = label_set_;
  for (size_t i = 0; i < view.devices.size(); ++i) {
    if (!series_dirty_[i / kBlock] || skip_[i]) continue;
    const JoinedDevice& device = view.devices[i];
    label_sets_[i].first = static_cast<uint32_t>(label_ranges_.size());
    const auto add = [&](const Holder* holder) {
      const size_t start = labels_.size();
      // AppendLabel puts a comma before every label but the first of the string it appends to:
      // render into a string of its own, starting empty.
      set.clear();
      AppendLabel(set, "resource", device.resource);
      AppendLabel(set, "device", device.report->info.id);
      if (holder != nullptr) {
        AppendLabel(set, "namespace", holder->ns);
        AppendLabel(set, "pod", holder->pod);
        AppendLabel(set, "container", holder->container);
        if (!holder->claim_name.empty()) {
          AppendLabel(set, "claim_namespace", holder->claim_namespace);
          AppendLabel(set, "claim_name", holder->claim_name);
        }
      }
      labels_.append(set);
      label_ranges_.emplace_back(static_cast<uint32_t>(start),
                                 static_cast<uint32_t>(labels_.size() - start));
    };
    // One set of series per holder, or one without holder labels for a free device (and for
    // every device when holder labels are off).
    if (device.holders.empty() || !holder_labels_) {
      add(nullptr);
    } else {
      for (const Holder& holder : device.holders) add(&holder);
    }
    label_sets_[i].count = static_cast<uint32_t>(label_ranges_.size()) - label_sets_[i].first;
  }
}

void DeviceSection::RenderBlock(const NodeView& view, size_t family, size_t block,
                                ExpositionWriter& writer) {
  const size_t end = std::min(view.devices.size(), (block + 1) * kBlock);
  for (size_t i = block * kBlock; i < end; ++i) {
    if (skip_[i]) continue;
    const JoinedDevice& device = view.devices[i];
    const DeviceReport& report = *device.report;
    // Series of different devices differ in resource or device: only a device's own can repeat.
    writer.ForgetSeries();
    if (family == kInfoFamily) {
      const DeviceInfo& d = report.info;
      writer.Begin("devscope_device_info");
      writer.Label("resource", device.resource);
      writer.Label("device", d.id);
      writer.Label("collector", device.collector);
      writer.Label("vendor", d.vendor);
      writer.Label("model", d.model);
      if (d.numa_node.has_value()) {
        writer.Label("numa_node", *d.numa_node);
      } else {
        writer.Label("numa_node", "");
      }
      writer.Label("pci_address", d.pci_address);
      writer.End(1);
      continue;
    }
    const LabelSets sets = label_sets_[i];
    for (uint32_t s = sets.first; s < sets.first + sets.count; ++s) {
      const absl::string_view labels =
          absl::string_view(labels_).substr(label_ranges_[s].first, label_ranges_[s].second);
      if (family == kHealthyFamily) {
        writer.Begin("devscope_device_healthy");
        writer.Labels(labels);
        writer.End(report.health.healthy ? 1 : 0);
        continue;
      }
      const int32_t telemetry = static_cast<int32_t>(family - kFirstTelemetryFamily);
      for (uint32_t j = sample_start_[i]; j < sample_start_[i + 1]; ++j) {
        if (sample_family_[j] != telemetry) continue;
        const Sample& sample = report.samples[j - sample_start_[i]];
        writer.Begin(sample.name);
        writer.Labels(labels);
        for (const auto& [name, value] : sample.labels) writer.Label(name, value);
        writer.End(sample.value);
      }
    }
  }
}

void DeviceSection::Render(std::shared_ptr<const NodeView> view_ptr, StableTextBuilder& out) {
  const NodeView& view = *view_ptr;
  std::swap(families_, last_families_);
  FindFamilies(view);
  const bool same_families = families_ == last_families_;

  std::swap(skip_, last_skip_);
  skip_.assign(view.devices.size(), false);
  seen_devices_.clear();
  bool any_device = false;
  for (size_t i = 0; i < view.devices.size(); ++i) {
    skip_[i] =
        !seen_devices_.emplace(view.devices[i].resource, view.devices[i].report->info.id).second;
    any_device = any_device || !skip_[i];
  }
  MarkDirtyBlocks(view, same_families);
  MakeLabelSets(view);

  // Which telemetry families have a series to write at all.
  std::vector<bool>& used = used_;
  used.assign(families_.size(), false);
  for (size_t i = 0; i < view.devices.size(); ++i) {
    if (skip_[i]) continue;
    for (uint32_t j = sample_start_[i]; j < sample_start_[i + 1]; ++j) {
      if (sample_family_[j] >= 0) used[sample_family_[j]] = true;
    }
  }

  ExpositionWriter writer(out.buffer());
  const size_t blocks = series_dirty_.size();
  const size_t family_count = kFirstTelemetryFamily + families_.size();
  for (size_t family = 0; family < family_count; ++family) {
    if (family < kFirstTelemetryFamily ? !any_device : !used[family - kFirstTelemetryFamily]) {
      continue;
    }
    if (family == kInfoFamily) {
      writer.Header("devscope_device_info",
                    "A device a collector tracks, with its identity (1 per device).",
                    FamilyType::kGauge);
    } else if (family == kHealthyFamily) {
      writer.Header("devscope_device_healthy",
                    "1 when the device is healthy, 0 when not: the health the device plugin "
                    "reports to the kubelet.",
                    FamilyType::kGauge);
    } else {
      const Family& f = families_[family - kFirstTelemetryFamily];
      writer.Header(f.name, f.help,
                    f.kind == Sample::Kind::kCounter ? FamilyType::kCounter : FamilyType::kGauge);
    }
    out.EndPiece(Key(family, kHeaderBlock));
    const std::vector<bool>& dirty = family == kInfoFamily ? identity_dirty_ : series_dirty_;
    for (size_t block = 0; block < blocks; ++block) {
      if (!dirty[block] && out.CopyPiece(Key(family, block))) continue;
      RenderBlock(view, family, block, writer);
      out.EndPiece(Key(family, block));
    }
  }
  last_view_ = std::move(view_ptr);
}

void RenderUnmatchedClaimDevices(const NodeView& view, StableTextBuilder& out) {
  if (view.unmatched_claim_devices.empty()) return;
  std::map<absl::string_view, int> per_driver;
  for (const ClaimDevice* device : view.unmatched_claim_devices) ++per_driver[device->driver];
  ExpositionWriter writer(out.buffer());
  writer.Family("devscope_dynamic_resource_unmatched_devices",
                "DRA devices held by containers that devscope matched to no device it tracks: "
                "their telemetry, if any, carries no holder. Each is logged once.",
                FamilyType::kGauge);
  for (const auto& [driver, count] : per_driver) {
    writer.Begin("devscope_dynamic_resource_unmatched_devices");
    writer.Label("driver", driver);
    writer.End(count);
  }
  out.EndPiece(PieceKey(ViewSection::kUnmatchedClaimDevices, 0, 0));
}

void RenderCollectorStatus(const DeviceSnapshot& devices, StableTextBuilder& out) {
  if (devices.collectors.empty()) return;
  ExpositionWriter writer(out.buffer());
  const auto family = [&](uint64_t position, absl::string_view name, absl::string_view help,
                          auto value_of) {
    writer.Family(name, help, FamilyType::kGauge);
    for (const CollectorReport& c : devices.collectors) {
      writer.Begin(name);
      writer.Label("collector", c.collector);
      writer.End(value_of(c));
    }
    out.EndPiece(PieceKey(ViewSection::kCollectors, position, 0));
  };
  family(0, "devscope_collector_up", "1 when the collector's last pass succeeded.",
         [](const CollectorReport& c) { return c.up ? 1.0 : 0.0; });
  family(1, "devscope_collector_duration_seconds", "How long the collector's last pass took.",
         [](const CollectorReport& c) { return absl::ToDoubleSeconds(c.duration); });
  family(2, "devscope_collector_parse_errors",
         "Problems in the collector's last pass (bad lines, skipped device directories); each is "
         "logged with its file and line.",
         [](const CollectorReport& c) { return static_cast<double>(c.parse_errors); });
}

}  // namespace devscope
