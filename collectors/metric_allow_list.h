// A collector's metric allow-list (--collector.NAME.metrics, collectors.NAME.metrics): a
// collector wrapped so that its devices carry only the telemetry samples named in the list. The
// devices themselves, their identity and health are kept: devscope_device_info and
// devscope_device_healthy are devscope's own series, not a collector's samples. A knob that cuts
// the series a node sends (docs/scale.md).
#ifndef DEVSCOPE_COLLECTORS_METRIC_ALLOW_LIST_H_
#define DEVSCOPE_COLLECTORS_METRIC_ALLOW_LIST_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "collectors/collector.h"

namespace devscope {

// The names of a comma-separated allow-list ("a, b,c"); empty: no list (everything is kept).
// InvalidArgument when a name is not a devscope_device_ metric name.
absl::StatusOr<std::vector<std::string>> ParseMetricAllowList(absl::string_view text);

class AllowListedCollector : public Collector {
 public:
  AllowListedCollector(std::unique_ptr<Collector> inner, const std::vector<std::string>& names);

  absl::string_view name() const override { return inner_->name(); }
  absl::StatusOr<std::vector<DeviceReport>> Collect() override;
  int watch_fd() const override { return inner_->watch_fd(); }
  bool DrainWatch() override { return inner_->DrainWatch(); }
  uint64_t parse_errors() const override { return inner_->parse_errors(); }

 private:
  std::unique_ptr<Collector> inner_;
  absl::flat_hash_set<std::string> allowed_;
};

}  // namespace devscope

#endif  // DEVSCOPE_COLLECTORS_METRIC_ALLOW_LIST_H_
