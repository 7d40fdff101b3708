// The collector registry: one CollectorSpec per collector, listed in registry.cc (no static
// initialisers). From it come the --collector.NAME / --no-collector.NAME flags, each collector's
// own flags (--collector.NAME.OPTION) and YAML section (collectors.NAME.*), their help and docs
// rows, and the collectors themselves.
//
// Adding a collector: collectors/NAME.{h,cc} with its options struct, its
//   void DeclareOptions(OptionDeclarer& d, NameOptions& o);   // keys relative to collectors.NAME
// and its factory
//   absl::StatusOr<std::unique_ptr<Collector>> NewNameCollector(const NameOptions&, const
//   NodeRoots&);
// then one line in CollectorRegistry() (and the .cc in collectors/CMakeLists.txt).
#ifndef DEVSCOPE_COLLECTORS_REGISTRY_H_
#define DEVSCOPE_COLLECTORS_REGISTRY_H_

#include <any>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "collectors/collector.h"
#include "collectors/node_roots.h"
#include "common/options.h"

namespace devscope {

// --collector.NAME (on) / --no-collector.NAME (off); neither: auto.
enum class CollectorToggle { kAuto, kOn, kOff };

// What auto means for a collector. Either way its factory returns NotFound when there is nothing
// to collect, and in auto mode it is then skipped quietly; forced on, it stays listed as down
// (collector_up 0, with the reason).
enum class CollectorDefault {
  kWhenHardwareFound,  // on when its hardware (or library) is present
  kWhenConfigured,     // on when its options name what to collect (devicedir's path)
};

class CollectorSpec {
 public:
  template <typename Options>
  using Factory = absl::StatusOr<std::unique_ptr<Collector>> (*)(const Options&, const NodeRoots&);

  // A collector with options `Options` (declared by the DeclareOptions overload for them),
  // made by `factory` from its own immutable options and the shared node roots.
  template <typename Options>
  static CollectorSpec Of(std::string name, CollectorDefault when_auto, std::string help,
                          Factory<Options> factory) {
    CollectorSpec spec;
    spec.name_ = std::move(name);
    spec.when_auto_ = when_auto;
    spec.help_ = std::move(help);
    spec.default_options_ = [] { return std::any(Options{}); };
    spec.declare_ = [](OptionDeclarer& d, std::any& options) {
      DeclareOptions(d, *std::any_cast<Options>(&options));
    };
    spec.make_ = [factory](const std::any& options, const NodeRoots& roots) {
      return factory(*std::any_cast<Options>(&options), roots);
    };
    return spec;
  }

  const std::string& name() const { return name_; }
  CollectorDefault when_auto() const { return when_auto_; }
  const std::string& help() const { return help_; }  // what it collects, e.g. "NVIDIA GPUs ..."

  std::any DefaultOptions() const { return default_options_(); }
  // `options` holds this collector's Options (from DefaultOptions()).
  void Declare(OptionDeclarer& d, std::any& options) const { declare_(d, options); }
  absl::StatusOr<std::unique_ptr<Collector>> Make(const std::any& options,
                                                  const NodeRoots& roots) const {
    return make_(options, roots);
  }

 private:
  std::string name_;
  CollectorDefault when_auto_ = CollectorDefault::kWhenHardwareFound;
  std::string help_;
  std::function<std::any()> default_options_;
  std::function<void(OptionDeclarer&, std::any&)> declare_;
  std::function<absl::StatusOr<std::unique_ptr<Collector>>(const std::any&, const NodeRoots&)>
      make_;
};

// Every collector devscope has, in the order they are made and listed.
const std::vector<CollectorSpec>& CollectorRegistry();

// One collector's settings.
struct CollectorChoice {
  const CollectorSpec* spec = nullptr;
  CollectorToggle toggle = CollectorToggle::kAuto;
  std::any options;  // the spec's Options
  // --collector.NAME.metrics, collectors.NAME.metrics: the telemetry metrics to keep,
  // comma-separated (collectors/metric_allow_list.h); empty: all.
  std::string metrics;
};

// The settings of every collector of a registry: its toggle and its own options.
class CollectorSelection {
 public:
  // `registry` must outlive the selection.
  explicit CollectorSelection(const std::vector<CollectorSpec>& registry = CollectorRegistry());

  std::vector<CollectorChoice>& choices() { return choices_; }
  const std::vector<CollectorChoice>& choices() const { return choices_; }
  CollectorChoice* Find(absl::string_view name);

  // The options of collector `name`; null when there is none of that name and type.
  template <typename Options>
  Options* OptionsOf(absl::string_view name) {
    CollectorChoice* choice = Find(name);
    return choice == nullptr ? nullptr : std::any_cast<Options>(&choice->options);
  }

 private:
  std::vector<CollectorChoice> choices_;
};

// For each collector: --collector.NAME / --no-collector.NAME, then its own options under
// --collector.NAME. and collectors.NAME.
void DeclareOptions(OptionDeclarer& d, CollectorSelection& o);

// YAML collectors.NAME.advertise, which every hardware collector has: the extended resource name
// devscope's plugin advertises `devices` under.
void DeclareAdvertiseOption(OptionDeclarer& d, std::string& resource, absl::string_view devices);

// The collectors `selection` enables, in registry order: auto ones whose factory finds something,
// and forced-on ones (as a collector that fails every pass with the reason when it cannot be made).
std::vector<std::unique_ptr<Collector>> MakeEnabledCollectors(const CollectorSelection& selection,
                                                              const NodeRoots& roots);

// For a hardware collector's factory: runs one pass of `collector` and keeps it when the pass
// finds a device; NotFound("no " + what) when it finds none, the pass's error when it fails.
absl::StatusOr<std::unique_ptr<Collector>> KeepIfItFindsDevices(
    std::unique_ptr<Collector> collector, absl::string_view what);

}  // namespace devscope

#endif  // DEVSCOPE_COLLECTORS_REGISTRY_H_
