// What a line-oriented parser returns: the value built from the good lines and one error per bad
// line (a bad line is skipped, the rest kept).
#ifndef DEVSCOPE_COLLECTORS_PARSED_H_
#define DEVSCOPE_COLLECTORS_PARSED_H_

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace devscope {

// One bad line: its 1-based number and what is wrong with it.
struct LineError {
  int line = 0;
  std::string problem;
};

template <typename T>
struct Parsed {
  T value{};
  std::vector<LineError> errors;
};

// "FILE:LINE: problem" for each error, as devicedir logs and counts them.
inline std::vector<std::string> FormatLineErrors(absl::string_view file,
                                                 const std::vector<LineError>& errors) {
  std::vector<std::string> out;
  out.reserve(errors.size());
  for (const LineError& e : errors) out.push_back(absl::StrCat(file, ":", e.line, ": ", e.problem));
  return out;
}

}  // namespace devscope

#endif  // DEVSCOPE_COLLECTORS_PARSED_H_
