// Reading a prometheus-cpp registry in tests, through Collect() as a scrape would.
#ifndef DEVSCOPE_TEST_SUPPORT_METRIC_VALUE_H_
#define DEVSCOPE_TEST_SUPPORT_METRIC_VALUE_H_

#include <map>
#include <optional>
#include <string>

#include "prometheus/registry.h"

namespace devscope {

// The value of the series `name` with exactly `labels`: a gauge's or counter's value, a
// histogram's sample count; nullopt when there is no such series.
std::optional<double> MetricValue(prometheus::Registry& registry, const std::string& name,
                                  const std::map<std::string, std::string>& labels = {});

}  // namespace devscope

#endif  // DEVSCOPE_TEST_SUPPORT_METRIC_VALUE_H_
