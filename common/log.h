// Logging: spdlog behind a logfmt or JSON formatter, chosen by --log.format.
// Use the spdlog macros-free API: devscope::Log().info("msg key={}", v).
#ifndef DEVSCOPE_COMMON_LOG_H_
#define DEVSCOPE_COMMON_LOG_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/options.h"
#include "spdlog/spdlog.h"

// Debian's Abseil has its own string_view type; let log calls format it like any string.
template <>
struct fmt::formatter<absl::string_view> : fmt::formatter<fmt::string_view> {
  template <typename FormatContext>
  auto format(absl::string_view value, FormatContext& ctx) const {
    return fmt::formatter<fmt::string_view>::format(fmt::string_view(value.data(), value.size()),
                                                    ctx);
  }
};

namespace devscope {

struct LogOptions {
  std::string level = "info";     // --log.level: debug, info, warn, error
  std::string format = "logfmt";  // --log.format: logfmt, json
};
void DeclareOptions(OptionDeclarer& d, LogOptions& o);

// Configures the process-wide logger (stderr). Returns InvalidArgument naming a bad value (which
// the declarations already refuse on the command line).
absl::Status ConfigureLogging(const LogOptions& options);

// The process-wide logger; usable before ConfigureLogging (defaults: info, logfmt).
spdlog::logger& Log();

}  // namespace devscope

#endif  // DEVSCOPE_COMMON_LOG_H_
