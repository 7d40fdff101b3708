// Reading sysfs attributes for a hardware collector, with each persistent problem logged once:
// a collector runs every few seconds, and an unreadable attribute should be one log line, not one
// a pass. Used from the collector's own thread only.
#ifndef DEVSCOPE_COLLECTORS_ATTRIBUTE_READER_H_
#define DEVSCOPE_COLLECTORS_ATTRIBUTE_READER_H_

#include <optional>
#include <set>
#include <string>

namespace devscope {

class AttributeReader {
 public:
  // `collector` names the collector in log lines ("collector=drm ...").
  explicit AttributeReader(std::string collector) : collector_(std::move(collector)) {}

  // Logs `message` the first time `key` is seen.
  void WarnOnce(const std::string& key, const std::string& message);

  // One bounded read of a numeric attribute. Absent: nullopt quietly (optional attributes are
  // absent, never zero); unreadable or malformed: nullopt, logged once.
  std::optional<double> ReadNumber(const std::string& path);

 private:
  const std::string collector_;
  std::set<std::string> warned_;
};

}  // namespace devscope

#endif  // DEVSCOPE_COLLECTORS_ATTRIBUTE_READER_H_
