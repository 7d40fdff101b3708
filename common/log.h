// Logging: spdlog behind a logfmt or JSON formatter, chosen by --log.format.
// Use the spdlog macros-free API: devscope::Log().info("msg key={}", v).
#ifndef DEVSCOPE_COMMON_LOG_H_
#define DEVSCOPE_COMMON_LOG_H_

#include <cstddef>
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

// The most bytes of one piece of outside input that a log line quotes.
inline constexpr size_t kLogQuoteLimit = 160;

// Outside input (a file's content or name, a kubelet's message, a device ID a client sent) as a
// log line or an error message that may be logged shows it: in double quotes, printable ASCII only
// (quotes, backslashes, control bytes and every byte above 0x7e escaped as \", \\, \n, \xNN:
// invalid UTF-8 and terminal escapes cannot reach the line), and at most `limit` bytes of it, with
// how many more there were: "first bytes...(+1234 bytes)". Every site that puts outside input
// into a message uses this; the log formatter itself keeps each whole line valid UTF-8 and valid
// JSON or logfmt whatever a message holds.
std::string QuoteForLog(absl::string_view text, size_t limit = kLogQuoteLimit);

// The longest message a log line carries (longer ones are cut, saying how much was cut).
inline constexpr size_t kLogMessageLimit = 8192;

}  // namespace devscope

#endif  // DEVSCOPE_COMMON_LOG_H_
