#include "collectors/registry.h"

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
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

using Factory = absl::StatusOr<std::unique_ptr<Collector>> (*)(const Config&);

void AddHardwareCollector(const char* name, CollectorToggle toggle, Factory factory,
                          const Config& config, std::vector<std::unique_ptr<Collector>>& out) {
  if (toggle == CollectorToggle::kOff) return;
  absl::StatusOr<std::unique_ptr<Collector>> made = factory(config);
  if (made.ok()) {
    out.push_back(std::move(*made));
    return;
  }
  if (toggle == CollectorToggle::kAuto && absl::IsNotFound(made.status())) {
    Log().debug("collector skipped collector={} reason=\"{}\"", name,
                std::string(made.status().message()));
    return;
  }
  // Forced on, or present but broken: keep it visible as down.
  Log().warn("collector unavailable collector={} error=\"{}\"", name,
             std::string(made.status().message()));
  out.push_back(std::make_unique<FailedCollector>(name, made.status()));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Collector>> KeepIfItFindsDevices(
    std::unique_ptr<Collector> collector, absl::string_view what) {
  auto devices = collector->Collect();
  if (!devices.ok()) return devices.status();
  if (devices->empty()) return absl::NotFoundError(absl::StrCat("no ", what));
  return collector;
}

std::vector<std::unique_ptr<Collector>> MakeEnabledCollectors(const Config& config) {
  std::vector<std::unique_ptr<Collector>> collectors;
  if (!config.devicedir_path.empty()) {
    // Explicitly asked for: never skipped, even when it cannot be made.
    AddHardwareCollector("devicedir", CollectorToggle::kOn, &NewDevicedirCollector, config,
                         collectors);
  }
  AddHardwareCollector("nvml", config.nvml.toggle, &NewNvmlCollector, config, collectors);
  AddHardwareCollector("drm", config.drm.toggle, &NewDrmCollector, config, collectors);
  AddHardwareCollector("netdev", config.netdev.toggle, &NewNetdevCollector, config, collectors);
  return collectors;
}

}  // namespace devscope
