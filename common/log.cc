#include "common/log.h"

#include <memory>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "spdlog/pattern_formatter.h"
#include "spdlog/sinks/stdout_sinks.h"

namespace devscope {
namespace {

absl::string_view LevelName(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug:
      return "debug";
    case spdlog::level::info:
      return "info";
    case spdlog::level::warn:
      return "warn";
    default:
      return "error";
  }
}

// A message as a quoted logfmt or JSON value: nlohmann's JSON string, which escapes quotes,
// backslashes and control characters and replaces bytes that are not UTF-8 with U+FFFD, so the
// line stays valid UTF-8 and valid JSON (and logfmt, whose quoted values take the same escapes)
// whatever the message holds. Messages longer than kLogMessageLimit are cut.
void AppendQuoted(absl::string_view text, spdlog::memory_buf_t& out) {
  std::string message(text.substr(0, kLogMessageLimit));
  if (text.size() > kLogMessageLimit) {
    absl::StrAppend(&message, "...(+", text.size() - kLogMessageLimit, " bytes)");
  }
  const std::string quoted =
      nlohmann::json(std::move(message))
          .dump(-1, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace);
  out.append(std::string_view(quoted));
}

// ts=... level=... msg="..."; messages carry their own key=value pairs after the text, so the
// whole message goes into msg, which keeps the line parseable whatever the message holds.
class LogfmtFormatter : public spdlog::formatter {
 public:
  explicit LogfmtFormatter(bool json) : json_(json) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const std::string ts =
        absl::FormatTime(absl::RFC3339_full, absl::FromChrono(msg.time), absl::UTCTimeZone());
    const absl::string_view text(msg.payload.data(), msg.payload.size());
    const absl::string_view level = LevelName(msg.level);
    if (json_) {
      dest.append(absl::StrCat("{\"ts\":\"", ts, "\",\"level\":\"", level, "\",\"msg\":"));
      AppendQuoted(text, dest);
      dest.append(std::string_view("}\n"));
    } else {
      dest.append(absl::StrCat("ts=", ts, " level=", level, " msg="));
      AppendQuoted(text, dest);
      dest.push_back('\n');
    }
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<LogfmtFormatter>(json_);
  }

 private:
  bool json_;
};

std::shared_ptr<spdlog::logger> MakeLogger() {
  auto logger = std::make_shared<spdlog::logger>("devscope",
                                                 std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_formatter(std::make_unique<LogfmtFormatter>(false));
  logger->set_level(spdlog::level::info);
  logger->flush_on(spdlog::level::trace);
  return logger;
}

}  // namespace

spdlog::logger& Log() {
  static const std::shared_ptr<spdlog::logger> logger = MakeLogger();
  return *logger;
}

std::string QuoteForLog(absl::string_view text, size_t limit) {
  // CHexEscape escapes every byte that is not printable ASCII, so what it gives is ASCII however
  // the input was cut.
  std::string quoted = absl::StrCat("\"", absl::CHexEscape(text.substr(0, limit)));
  if (text.size() > limit) absl::StrAppend(&quoted, "...(+", text.size() - limit, " bytes)");
  quoted.push_back('"');
  return quoted;
}

void DeclareOptions(OptionDeclarer& d, LogOptions& o) {
  d.Flag("log.level", ChoiceValue(o.level, {"debug", "info", "warn", "error"}),
         "Least severity logged: debug, info, warn or error")
      .Group("General");
  d.Flag("log.format", ChoiceValue(o.format, {"logfmt", "json"}), "Log line format: logfmt or json")
      .Group("General");
}

absl::Status ConfigureLogging(const LogOptions& options) {
  const absl::string_view level = options.level;
  const absl::string_view format = options.format;
  spdlog::level::level_enum parsed;
  if (level == "debug") {
    parsed = spdlog::level::debug;
  } else if (level == "info") {
    parsed = spdlog::level::info;
  } else if (level == "warn") {
    parsed = spdlog::level::warn;
  } else if (level == "error") {
    parsed = spdlog::level::err;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--log.level: \"", level, "\" is not one of debug, info, warn, error"));
  }
  if (format != "logfmt" && format != "json") {
    return absl::InvalidArgumentError(
        absl::StrCat("--log.format: \"", format, "\" is not one of logfmt, json"));
  }
  Log().set_level(parsed);
  Log().set_formatter(std::make_unique<LogfmtFormatter>(format == "json"));
  return absl::OkStatus();
}

}  // namespace devscope
