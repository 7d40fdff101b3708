#include "collectors/registry.h"

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "collectors/devicedir.h"
#include "collectors/drm.h"
#include "collectors/metric_allow_list.h"
#include "collectors/netdev.h"
#include "collectors/nvml.h"
#include "common/log.h"

namespace devscope {
namespace {

// Stands in for a collector that was asked for but could not be made, so that it still shows
// as collector_up 0 with the reason instead of vanishing.
class FailedCollector : public Collector {
 public:
  FailedCollector(std::string name, absl::Status status)
      : name_(std::move(name)), status_(std::move(status)) {}
  absl::string_view name() const override { return name_; }
  absl::StatusOr<std::vector<DeviceReport>> Collect() override { return status_; }

 private:
  const std::string name_;
  const absl::Status status_;
};

OptionValue ToggleValue(CollectorToggle& toggle) {
  OptionValue value;
  value.type = OptionType::kToggle;
  value.text = [&toggle] {
    return std::string(toggle == CollectorToggle::kAuto ? "auto"
                       : toggle == CollectorToggle::kOn ? "on"
                                                        : "off");
  };
  value.set = [&toggle](bool on) { toggle = on ? CollectorToggle::kOn : CollectorToggle::kOff; };
  return value;
}

}  // namespace

const std::vector<CollectorSpec>& CollectorRegistry() {
  using enum CollectorDefault;
  static const auto* registry = new std::vector<CollectorSpec>{
      CollectorSpec::Of<DevicedirOptions>("devicedir", kWhenConfigured,
                                          "devices described by a directory of small files",
                                          &NewDevicedirCollector),
      CollectorSpec::Of<NvmlOptions>("nvml", kWhenHardwareFound,
                                     "NVIDIA GPUs and MIG devices through libnvidia-ml",
                                     &NewNvmlCollector),
      CollectorSpec::Of<DrmOptions>("drm", kWhenHardwareFound, "AMD and Intel GPUs from sysfs",
                                    &NewDrmCollector),
      CollectorSpec::Of<NetdevOptions>("netdev", kWhenHardwareFound,
                                       "NICs and SR-IOV functions from sysfs", &NewNetdevCollector),
  };
  return *registry;
}

CollectorSelection::CollectorSelection(const std::vector<CollectorSpec>& registry) {
  for (const CollectorSpec& spec : registry) {
    choices_.push_back({&spec, CollectorToggle::kAuto, spec.DefaultOptions()});
  }
}

CollectorChoice* CollectorSelection::Find(absl::string_view name) {
  for (CollectorChoice& choice : choices_) {
    if (choice.spec->name() == name) return &choice;
  }
  return nullptr;
}

void DeclareOptions(OptionDeclarer& d, CollectorSelection& o) {
  for (CollectorChoice& choice : o.choices()) {
    const std::string& name = choice.spec->name();
    const char* when_auto = choice.spec->when_auto() == CollectorDefault::kWhenHardwareFound
                                ? "on when its hardware is present"
                                : "on when its options say what to collect";
    d.Flag(absl::StrCat("collector.", name), ToggleValue(choice.toggle),
           absl::StrCat("Enable (or, with --no-, disable) the ", name,
                        " collector: ", choice.spec->help(), "; default: ", when_auto))
        .Group("Collectors");
    OptionDeclarer own =
        d.Under(absl::StrCat("collector.", name, "."), absl::StrCat("collectors.", name));
    choice.spec->Declare(own, choice.options);
    own.FlagAndKey("metrics", "metrics", TextValue(choice.metrics),
                   absl::StrCat("Keep only these of the ", name,
                                " collector's telemetry metrics (comma-separated devscope_device_ "
                                "names); empty: all. Device identity and health stay"))
        .Group("Collectors")
        .Check([&choice] { return ParseMetricAllowList(choice.metrics).status(); });
  }
}

void DeclareAdvertiseOption(OptionDeclarer& d, std::string& resource, absl::string_view devices) {
  d.Key("advertise", resource,
        absl::StrCat("Extended resource name devscope's device plugin advertises ", devices,
                     " under; empty: only track and join them (a vendor plugin may own them)"));
}

absl::StatusOr<std::unique_ptr<Collector>> KeepIfItFindsDevices(
    std::unique_ptr<Collector> collector, absl::string_view what) {
  auto devices = collector->Collect();
  if (!devices.ok()) return devices.status();
  if (devices->empty()) return absl::NotFoundError(absl::StrCat("no ", what));
  return collector;
}

std::vector<std::unique_ptr<Collector>> MakeEnabledCollectors(const CollectorSelection& selection,
                                                              const NodeRoots& roots) {
  std::vector<std::unique_ptr<Collector>> collectors;
  for (const CollectorChoice& choice : selection.choices()) {
    const std::string& name = choice.spec->name();
    if (choice.toggle == CollectorToggle::kOff) continue;
    absl::StatusOr<std::unique_ptr<Collector>> made = choice.spec->Make(choice.options, roots);
    if (made.ok()) {
      // Checked when the options were read (DeclareOptions); an unparsable list keeps everything.
      absl::StatusOr<std::vector<std::string>> allowed = ParseMetricAllowList(choice.metrics);
      if (allowed.ok() && !allowed->empty()) {
        *made = std::make_unique<AllowListedCollector>(*std::move(made), *allowed);
      }
      collectors.push_back(std::move(*made));
      continue;
    }
    if (choice.toggle == CollectorToggle::kAuto && absl::IsNotFound(made.status())) {
      Log().debug("collector skipped collector={} reason=\"{}\"", name,
                  std::string(made.status().message()));
      continue;
    }
    // Forced on, or present but broken: keep it visible as down.
    Log().warn("collector unavailable collector={} error=\"{}\"", name,
               std::string(made.status().message()));
    collectors.push_back(std::make_unique<FailedCollector>(name, made.status()));
  }
  return collectors;
}

}  // namespace devscope
