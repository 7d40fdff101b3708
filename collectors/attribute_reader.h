// Reading sysfs attributes for a hardware collector, with each persistent problem logged once:
// a collector runs every few seconds, and an unreadable attribute should be one log line, not one
// a pass. Used from the collector's own thread only.
#ifndef DEVSCOPE_COLLECTORS_ATTRIBUTE_READER_H_
#define DEVSCOPE_COLLECTORS_ATTRIBUTE_READER_H_

#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/warn_once.h"

namespace devscope {

class AttributeReader {
 public:
  // `collector` names the collector in log lines ("collector=drm ...").
  explicit AttributeReader(absl::string_view collector)
      : warn_(absl::StrCat("collector=", collector, " ")) {}

  // Logs `message` the first time `key` is seen.
  void Warn(const std::string& key, absl::string_view message) { warn_.Warn(key, message); }

  // One bounded read of a numeric attribute. Absent: nullopt quietly (optional attributes are
  // absent, never zero); unreadable or malformed: nullopt, logged once.
  std::optional<double> ReadNumber(const std::string& path);

 private:
  WarnOnce warn_;
};

}  // namespace devscope

#endif  // DEVSCOPE_COLLECTORS_ATTRIBUTE_READER_H_
