#include "collectors/attribute_reader.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/log.h"

namespace devscope {

std::optional<double> AttributeReader::ReadNumber(const std::string& path) {
  auto content = ReadSmallFile(path, 4096);
  if (!content.ok()) {
    if (!absl::IsNotFound(content.status())) {
      Warn(path, absl::StrCat("unreadable attribute: ", content.status().message()));
    }
    return std::nullopt;
  }
  double value = 0;
  if (!absl::SimpleAtod(absl::StripAsciiWhitespace(*content), &value)) {
    Warn(path, absl::StrCat("malformed attribute ", path, ": ",
                            QuoteForLog(absl::StripAsciiWhitespace(*content))));
    return std::nullopt;
  }
  return value;
}

}  // namespace devscope
