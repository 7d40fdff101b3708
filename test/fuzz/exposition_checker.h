// An independent check of the Prometheus text exposition format (version 0.0.4) as Prometheus
// and promtool read it, for the fuzz targets that drive outside input through to /metrics. It
// shares no code with the renderer or with devscope's own parser, so that a mistake in either is
// not repeated here.
//
// Rules checked:
//   - metric names [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]* and not __*, a
//     label name at most once per series;
//   - label values quoted, escaped (only \\, \" and \n), valid UTF-8; HELP text likewise
//     (escapes \\ and \n);
//   - a value Prometheus parses (a float, NaN, +Inf, -Inf), an optional integer timestamp;
//   - HELP and TYPE at most once per family, TYPE before the family's samples, a known type, a
//     sample's name its family's (or, for histograms and summaries, a suffixed one);
//   - a family's lines in one group;
//   - no duplicate series: same name and same labels, in any order, where a label with an empty
//     value is the same as no label (Prometheus' rule);
//   - every line ends with a newline.
#ifndef DEVSCOPE_TEST_FUZZ_EXPOSITION_CHECKER_H_
#define DEVSCOPE_TEST_FUZZ_EXPOSITION_CHECKER_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace devscope {

// OK, or InvalidArgument naming the first line that breaks a rule and the rule.
absl::Status CheckExposition(absl::string_view text);

// Whether `s` is valid UTF-8 (no overlong forms, surrogates or code points above U+10FFFF).
bool IsValidUtf8(absl::string_view s);

}  // namespace devscope

#endif  // DEVSCOPE_TEST_FUZZ_EXPOSITION_CHECKER_H_
