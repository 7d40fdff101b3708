#include "exporter/holder_usage.h"

#include <algorithm>
#include <string>

#include "absl/strings/string_view.h"
#include "exporter/exposition_writer.h"
#include "exporter/view_sections.h"

namespace devscope {
namespace {

// A quantity split by holder: the family written, the device sample it splits, and a process's
// part of it.
struct HolderQuantity {
  absl::string_view family;
  absl::string_view help;
  absl::string_view device_sample;
  std::optional<double> (*of)(const DeviceProcess&);
};

std::optional<double> MemoryOf(const DeviceProcess& p) {
  if (!p.memory_used_bytes.has_value()) return std::nullopt;
  return static_cast<double>(*p.memory_used_bytes);
}

const std::array<HolderQuantity, kHolderQuantityCount> kHolderQuantities = {{
    {"devscope_device_holder_memory_used_bytes",
     "Device memory used by the holder's processes; the unattributed share (empty holder labels) "
     "is the rest of devscope_device_memory_used_bytes.",
     "devscope_device_memory_used_bytes", &MemoryOf},
    {"devscope_device_holder_utilization_ratio",
     "The holder's processes' share of devscope_device_utilization_ratio (SM utilisation); the "
     "shares sum to the device's.",
     "devscope_device_utilization_ratio",
     [](const DeviceProcess& p) { return p.sm_utilization_ratio; }},
    {"devscope_device_holder_memory_copy_utilization_ratio",
     "The holder's processes' share of devscope_device_memory_copy_utilization_ratio.",
     "devscope_device_memory_copy_utilization_ratio",
     [](const DeviceProcess& p) { return p.memory_utilization_ratio; }},
    {"devscope_device_holder_encoder_utilization_ratio",
     "The holder's processes' share of devscope_device_encoder_utilization_ratio.",
     "devscope_device_encoder_utilization_ratio",
     [](const DeviceProcess& p) { return p.encoder_utilization_ratio; }},
    {"devscope_device_holder_decoder_utilization_ratio",
     "The holder's processes' share of devscope_device_decoder_utilization_ratio.",
     "devscope_device_decoder_utilization_ratio",
     [](const DeviceProcess& p) { return p.decoder_utilization_ratio; }},
}};

// The device's own value of `name` (its sample without labels); nullopt when it has none.
std::optional<double> DeviceValue(const DeviceReport& report, absl::string_view name) {
  for (const Sample& sample : report.samples) {
    if (sample.name == name && sample.labels.empty()) return sample.value;
  }
  return std::nullopt;
}

// The index of `holder`'s share, added when it has none yet.
size_t ShareOf(std::vector<HolderShare>& shares, const ContainerName& holder) {
  auto it = std::find_if(shares.begin(), shares.end(),
                         [&holder](const HolderShare& s) { return s.holder == holder; });
  if (it != shares.end()) return static_cast<size_t>(it - shares.begin());
  shares.push_back(HolderShare{holder, 0, {}});
  return shares.size() - 1;
}

}  // namespace

std::vector<HolderShare> SplitByHolder(const JoinedDevice& device,
                                       const ProcessAttribution& attribution) {
  std::vector<HolderShare> shares;
  const DeviceReport& report = *device.report;
  if (report.processes.empty()) return shares;
  shares.push_back(HolderShare{});  // the unattributed share
  for (const Holder& h : device.holders) {
    ShareOf(shares, ContainerName{std::string(h.ns), std::string(h.pod), std::string(h.container)});
  }
  // Which share each process goes to: its index in `shares`.
  std::vector<size_t> share_of(report.processes.size(), 0);
  for (size_t i = 0; i < report.processes.size(); ++i) {
    auto it = attribution.containers.find(report.processes[i].pid);
    if (it != attribution.containers.end()) share_of[i] = ShareOf(shares, it->second);
    ++shares[share_of[i]].processes;
  }
  for (size_t q = 0; q < kHolderQuantityCount; ++q) {
    const std::optional<double> total = DeviceValue(report, kHolderQuantities[q].device_sample);
    if (!total.has_value()) continue;
    std::vector<double> sums(shares.size(), 0);
    double attributed = 0;
    for (size_t i = 0; i < report.processes.size(); ++i) {
      const std::optional<double> part = kHolderQuantities[q].of(report.processes[i]);
      if (!part.has_value() || share_of[i] == 0) continue;
      sums[share_of[i]] += *part;
      attributed += *part;
    }
    // The device's value is the whole: holders whose parts add up to more are scaled to it.
    const double scale = attributed > *total && attributed > 0 ? *total / attributed : 1;
    double given = 0;
    for (size_t s = 1; s < shares.size(); ++s) {
      shares[s].values[q] = sums[s] * scale;
      given += sums[s] * scale;
    }
    // Scaled: the holders take all of it (no rounding dust left to the unattributed share).
    shares[0].values[q] = scale < 1 ? 0.0 : std::max(0.0, *total - given);
  }
  return shares;
}

void RenderHolderUsage(const NodeView& view, const ProcessAttribution* attribution,
                       StableTextBuilder& out) {
  if (attribution == nullptr || !attribution->up) return;
  std::vector<std::vector<HolderShare>> split(view.devices.size());
  bool any = false;
  for (size_t i = 0; i < view.devices.size(); ++i) {
    split[i] = SplitByHolder(view.devices[i], *attribution);
    any = any || !split[i].empty();
  }
  if (!any) return;
  ExpositionWriter writer(out.buffer());
  const auto family = [&](uint64_t position, absl::string_view name, absl::string_view help,
                          auto value_of) {
    writer.Family(name, help, FamilyType::kGauge);
    for (size_t i = 0; i < view.devices.size(); ++i) {
      for (const HolderShare& share : split[i]) {
        const std::optional<double> value = value_of(share);
        if (!value.has_value()) continue;
        writer.Begin(name);
        writer.Label("resource", view.devices[i].resource);
        writer.Label("device", view.devices[i].report->info.id);
        writer.Label("namespace", share.holder.ns);
        writer.Label("pod", share.holder.pod);
        writer.Label("container", share.holder.container);
        writer.End(*value);
      }
    }
    out.EndPiece(PieceKey(ViewSection::kHolderUsage, position, 0));
  };
  family(0, "devscope_device_holder_processes",
         "Processes of the holder using the device; the unattributed share (empty holder labels) "
         "counts those whose container is not known.",
         [](const HolderShare& s) { return std::optional<double>(s.processes); });
  for (size_t q = 0; q < kHolderQuantityCount; ++q) {
    family(q + 1, kHolderQuantities[q].family, kHolderQuantities[q].help,
           [q](const HolderShare& s) { return s.values[q]; });
  }
}

}  // namespace devscope
