// The Prometheus text exposition format, parsed strictly as devicedir's metrics.prom files must
// be written: only names starting devscope_device_, optional "# HELP" / "# TYPE" (gauge or
// counter) lines before a name's samples, labels with escapes (\\, \", \n), a value (NaN and
// +/-Inf allowed), no timestamps, no duplicate series (a label with an empty value is dropped, as
// Prometheus treats it as absent), no negative counter. The labels device,
// resource, namespace, pod and container are devscope's (common/label_names.h) and refused.
//
// Text in, samples and per-line errors out: any input is safe (it is fuzzed), and a bad line
// costs only itself.
#ifndef DEVSCOPE_COLLECTORS_PROMETHEUS_TEXT_PARSER_H_
#define DEVSCOPE_COLLECTORS_PROMETHEUS_TEXT_PARSER_H_

#include <vector>

#include "absl/strings/string_view.h"
#include "collectors/collector.h"
#include "collectors/parsed.h"

namespace devscope {

// The samples of the good lines in order, each with its kind (# TYPE, gauge by default) and
// help (# HELP, empty when none); one LineError per bad line.
Parsed<std::vector<Sample>> ParsePrometheusText(absl::string_view text);

}  // namespace devscope

#endif  // DEVSCOPE_COLLECTORS_PROMETHEUS_TEXT_PARSER_H_
