// The drm collector: AMD and Intel GPUs from <sysfs>/class/drm/cardN.
//
// A card's device nodes are handed out as the host's /dev/dri/cardN and /dev/dri/renderDM; the
// health model checks that they exist.
//
// Every pass rediscovers the cards (a card that vanished simply stops being reported) and reads
// each attribute with one bounded read. An absent attribute is no sample, never zero; an
// unreadable or malformed one is skipped and logged once; one bad card never fails the others.
#include "collectors/drm.h"

#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "collectors/attribute_reader.h"
#include "collectors/registry.h"
#include "common/files.h"
#include "common/log.h"

namespace devscope {
namespace {

namespace fs = std::filesystem;

constexpr uint32_t kVendorAmd = 0x1002;
constexpr uint32_t kVendorIntel = 0x8086;

// "card0" yes; "card0-DP-1" (a connector) and "renderD128" no.
bool IsCardName(absl::string_view name) {
  if (!absl::ConsumePrefix(&name, "card") || name.empty()) return false;
  for (char c : name) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

std::optional<uint32_t> ParseHexId(absl::string_view text) {
  absl::ConsumePrefix(&text, "0x");
  uint32_t value = 0;
  if (text.empty() || !absl::SimpleHexAtoi(text, &value)) return std::nullopt;
  return value;
}

// The card's default resource label: what the vendors' own device plugins advertise it as, so the
// join finds it in pod-resources when devscope does not advertise it itself.
std::string DefaultResource(uint32_t vendor, const std::string& driver) {
  if (vendor == kVendorAmd) return "amd.com/gpu";
  if (driver == "xe") return "gpu.intel.com/xe";
  return "gpu.intel.com/i915";
}

class DrmCollector : public Collector {
 public:
  DrmCollector(const DrmOptions& options, const NodeRoots& roots)
      : sysfs_(roots.sysfs), advertise_resource_(options.advertise_resource) {}

  absl::string_view name() const override { return "drm"; }

  absl::StatusOr<std::vector<DeviceReport>> Collect() override {
    std::vector<DeviceReport> reports;
    for (const std::string& card : ListDirectory(ClassDir())) {
      if (!IsCardName(card)) continue;
      if (auto report = CollectCard(card)) reports.push_back(std::move(*report));
    }
    return reports;
  }

 private:
  std::string ClassDir() const { return absl::StrCat(sysfs_, "/class/drm"); }

  void AddSample(std::vector<Sample>& samples, const std::string& path, const char* name,
                 double scale, Sample::Kind kind = Sample::Kind::kGauge) {
    if (auto value = attributes_.ReadNumber(path)) {
      Sample sample;
      sample.name = name;
      sample.kind = kind;
      sample.value = *value * scale;
      samples.push_back(std::move(sample));
    }
  }

  std::optional<DeviceReport> CollectCard(const std::string& card) {
    const std::string card_dir = absl::StrCat(ClassDir(), "/", card);
    const std::string dev = absl::StrCat(card_dir, "/device");
    std::error_code ec;
    // device -> ../../../0000:03:00.0: the PCI function that owns the card.
    const fs::path pci_dir = fs::canonical(dev, ec);
    if (ec) {
      attributes_.Warn(dev, absl::StrCat(card, " has no device link, skipped: ", ec.message()));
      return std::nullopt;
    }
    // Non-PCI cards (vkms, simpledrm) have no vendor attribute: not ours.
    const std::optional<std::string> vendor_text = ReadTrimmed(absl::StrCat(dev, "/vendor"));
    if (!vendor_text) return std::nullopt;
    const std::optional<uint32_t> vendor = ParseHexId(*vendor_text);
    if (!vendor) {
      attributes_.Warn(
          absl::StrCat(dev, "/vendor"),
          absl::StrCat(card, " has a malformed vendor ", QuoteForLog(*vendor_text), ", skipped"));
      return std::nullopt;
    }
    // NVIDIA cards belong to the nvml collector; others are not supported.
    if (*vendor != kVendorAmd && *vendor != kVendorIntel) return std::nullopt;

    DeviceReport report;
    DeviceInfo& info = report.info;
    info.pci_address = pci_dir.filename().string();
    info.id = info.pci_address;
    info.vendor = *vendor == kVendorAmd ? "AMD" : "Intel";
    // device/product_name (amdgpu, from the board's FRU) when present, else the PCI device ID.
    std::optional<std::string> model = ReadTrimmed(absl::StrCat(dev, "/product_name"));
    if (!model || model->empty()) model = ReadTrimmed(absl::StrCat(dev, "/device"));
    info.model = model.value_or("");
    if (auto serial = ReadTrimmed(absl::StrCat(dev, "/serial_number"))) info.serial = *serial;
    // device/numa_node: -1 when the platform has no NUMA affinity for the device.
    if (auto numa = attributes_.ReadNumber(absl::StrCat(dev, "/numa_node")); numa && *numa >= 0) {
      info.numa_node = static_cast<int64_t>(*numa);
    }
    // device/driver -> .../drivers/amdgpu | i915 | xe
    const std::string driver = SymlinkBasename(absl::StrCat(dev, "/driver")).value_or("");
    info.advertise = !advertise_resource_.empty();
    info.resource = info.advertise ? advertise_resource_ : DefaultResource(*vendor, driver);

    // The card's nodes: cardN, and renderDM listed in device/drm/ beside it.
    std::vector<std::string> nodes = {card};
    for (const std::string& entry : ListDirectory(absl::StrCat(dev, "/drm"))) {
      if (absl::StartsWith(entry, "renderD")) nodes.push_back(entry);
    }
    for (const std::string& node : nodes) {
      info.aliases.push_back(node);
      AllocateSpec::DeviceNode device_node;
      device_node.host_path = absl::StrCat("/dev/dri/", node);
      device_node.container_path = device_node.host_path;
      device_node.permissions = "rw";
      info.allocate.device_nodes.push_back(std::move(device_node));
    }
    // device/enable is 0 when the PCI function has been disabled (e.g. after a failed reset).
    if (auto enable = ReadTrimmed(absl::StrCat(dev, "/enable"));
        report.health.healthy && enable && *enable == "0") {
      report.health.healthy = false;
      report.health.reason = "PCI device disabled";
    }

    report.samples = Telemetry(dev);
    return report;
  }

  // The card's telemetry, from its PCI function's directory `dev`.
  std::vector<Sample> Telemetry(const std::string& dev) {
    std::vector<Sample> samples;
    std::error_code ec;
    // amdgpu: device/gpu_busy_percent (0..100), device/mem_info_vram_{total,used} (bytes).
    AddSample(samples, absl::StrCat(dev, "/gpu_busy_percent"), "devscope_device_utilization_ratio",
              0.01);
    AddSample(samples, absl::StrCat(dev, "/mem_info_vram_used"),
              "devscope_device_memory_used_bytes", 1);
    AddSample(samples, absl::StrCat(dev, "/mem_info_vram_total"),
              "devscope_device_memory_total_bytes", 1);
    // hwmon: temp1_input (millidegrees C), power1_average or power1_input (microwatts),
    // energy1_input (microjoules).
    for (const std::string& hwmon : ListDirectory(absl::StrCat(dev, "/hwmon"))) {
      if (!absl::StartsWith(hwmon, "hwmon")) continue;
      const std::string dir = absl::StrCat(dev, "/hwmon/", hwmon);
      AddSample(samples, absl::StrCat(dir, "/temp1_input"), "devscope_device_temperature_celsius",
                1e-3);
      const std::string average = absl::StrCat(dir, "/power1_average");
      AddSample(samples, fs::exists(average, ec) ? average : absl::StrCat(dir, "/power1_input"),
                "devscope_device_power_watts", 1e-6);
      AddSample(samples, absl::StrCat(dir, "/energy1_input"), "devscope_device_energy_joules_total",
                1e-6, Sample::Kind::kCounter);
      break;  // a GPU has one hwmon directory
    }
    AddRasErrors(absl::StrCat(dev, "/ras/umc_err_count"), samples);
    return samples;
  }

  // amdgpu RAS: device/ras/umc_err_count holds "ue: N\nce: M", the uncorrectable and correctable
  // memory (UMC) errors since boot.
  void AddRasErrors(const std::string& path, std::vector<Sample>& samples) {
    auto content = ReadSmallFile(path, 4096);
    if (!content.ok()) return;
    for (absl::string_view line : absl::StrSplit(*content, '\n', absl::SkipWhitespace())) {
      std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(line, ':');
      const absl::string_view key = absl::StripAsciiWhitespace(kv.first);
      uint64_t count = 0;
      if ((key != "ue" && key != "ce") ||
          !absl::SimpleAtoi(absl::StripAsciiWhitespace(kv.second), &count)) {
        attributes_.Warn(path, absl::StrCat("malformed line in ", path, ": ", QuoteForLog(line)));
        continue;
      }
      Sample sample;
      sample.name = "devscope_device_errors_total";
      sample.kind = Sample::Kind::kCounter;
      sample.labels = {{"kind", key == "ue" ? "ecc_uncorrected" : "ecc_corrected"}};
      sample.value = static_cast<double>(count);
      samples.push_back(std::move(sample));
    }
  }

  const std::string sysfs_;
  const std::string advertise_resource_;
  AttributeReader attributes_{"drm"};
};

}  // namespace

void DeclareOptions(OptionDeclarer& d, DrmOptions& o) {
  DeclareAdvertiseOption(d, o.advertise_resource, "AMD and Intel GPUs");
}

absl::StatusOr<std::unique_ptr<Collector>> NewDrmCollector(const DrmOptions& options,
                                                           const NodeRoots& roots) {
  return KeepIfItFindsDevices(std::make_unique<DrmCollector>(options, roots),
                              absl::StrCat("AMD or Intel GPU under ", roots.sysfs, "/class/drm"));
}

}  // namespace devscope
