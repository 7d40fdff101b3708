#include "common/units.h"

#include <limits>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace devscope {

absl::StatusOr<absl::Duration> ParsePositiveDuration(absl::string_view text) {
  absl::Duration duration;
  // absl::ParseDuration takes Go's syntax; a bare number without a unit is refused there except 0.
  if (!absl::ParseDuration(std::string(text), &duration)) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", text, "\" is not a duration (examples: 1s, 500ms, 2m)"));
  }
  if (duration <= absl::ZeroDuration() || duration == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" must be a positive duration"));
  }
  return duration;
}

absl::StatusOr<uint64_t> ParseByteSize(absl::string_view text) {
  static constexpr std::pair<absl::string_view, uint64_t> kUnits[] = {
      {"KiB", 1ULL << 10},    {"MiB", 1ULL << 20},           {"GiB", 1ULL << 30}, {"KB", 1000ULL},
      {"MB", 1000ULL * 1000}, {"GB", 1000ULL * 1000 * 1000}, {"B", 1ULL}};
  absl::string_view number = absl::StripAsciiWhitespace(text);
  uint64_t multiplier = 1;
  for (const auto& [suffix, factor] : kUnits) {
    if (number.size() > suffix.size() && number.substr(number.size() - suffix.size()) == suffix) {
      number.remove_suffix(suffix.size());
      multiplier = factor;
      break;
    }
  }
  uint64_t value = 0;
  if (number.empty() || !absl::ascii_isdigit(number.front()) || !absl::SimpleAtoi(number, &value)) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", text, "\" is not a size (examples: 64MiB, 16MB, 1048576)"));
  }
  if (value == 0) {
    return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" must be larger than 0"));
  }
  if (value > std::numeric_limits<uint64_t>::max() / multiplier) {
    return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" is too large"));
  }
  return value * multiplier;
}

}  // namespace devscope
