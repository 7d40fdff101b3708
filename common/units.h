// Parsing of the command line's durations ("1s", "500ms", "2m30s") and sizes ("64MiB", "16MB",
// "1048576"), with errors that name the problem.
#ifndef DEVSCOPE_COMMON_UNITS_H_
#define DEVSCOPE_COMMON_UNITS_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace devscope {

// A positive Go-style duration (ns, us, ms, s, m, h, combinable).
absl::StatusOr<absl::Duration> ParsePositiveDuration(absl::string_view text);

// A positive byte size: a plain number of bytes, or a number with B, KB, MB, GB (powers of 1000)
// or KiB, MiB, GiB (powers of 1024).
absl::StatusOr<uint64_t> ParseByteSize(absl::string_view text);

}  // namespace devscope

#endif  // DEVSCOPE_COMMON_UNITS_H_
