// Log lines that quote outside input (common/log.h): QuoteForLog, and the formatter keeping every
// line valid UTF-8 and valid JSON or logfmt whatever a message holds. The process-wide logger
// writes to stderr; the tests point file descriptor 2 at a file while they log.
#include "common/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "test/support/temp_dir.h"

namespace devscope {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// What `log` writes through the process-wide logger, configured with `format`.
std::string Logged(const std::string& format, const std::function<void()>& log) {
  LogOptions options;
  options.format = format;
  EXPECT_TRUE(ConfigureLogging(options).ok());
  TempDir dir;
  const std::string path = dir.Path("stderr");
  std::fflush(stderr);
  const int saved = dup(2);
  const int file = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  dup2(file, 2);
  log();
  Log().flush();
  std::fflush(stderr);
  dup2(saved, 2);
  close(saved);
  close(file);
  ConfigureLogging(LogOptions{}).IgnoreError();
  std::stringstream text;
  text << std::ifstream(path).rdbuf();
  return text.str();
}

TEST(QuoteForLogTest, PrintableAsciiOnlyAndBounded) {
  EXPECT_EQ(QuoteForLog("example.com/widget"), "\"example.com/widget\"");
  EXPECT_EQ(QuoteForLog("bad\xff\xfe\x01name"), "\"bad\\xff\\xfe\\x01name\"");
  EXPECT_EQ(QuoteForLog("say \"hi\"\\\n\x1b[31m"), "\"say \\\"hi\\\"\\\\\\n\\x1b[31m\"");
  EXPECT_EQ(QuoteForLog("caf\xc3\xa9"), "\"caf\\xc3\\xa9\"");  // UTF-8 too: ASCII out
  const std::string quoted = QuoteForLog(std::string(1000, '\xff'));
  EXPECT_THAT(quoted, EndsWith("...(+840 bytes)\""));
  EXPECT_EQ(quoted.size(), 1 + 160 * 4 + std::string("...(+840 bytes)\"").size());
  EXPECT_EQ(QuoteForLog("abcdef", 3), "\"abc...(+3 bytes)\"");
}

// The formatter's own escaping, for messages that carry raw bytes (a site that forgot to quote).
TEST(LogFormatTest, JsonLinesParseWhateverTheMessageHolds) {
  const std::string raw = "raw \xff\xfe\x01 \"quoted\" back\\slash \x1b[31m new\nline \xc3\xa9";
  const std::string line =
      Logged("json", [&] { Log().warn("message {} quoted={}", raw, QuoteForLog(raw)); });
  ASSERT_THAT(line, EndsWith("}\n"));
  const nlohmann::json parsed = nlohmann::json::parse(line);
  EXPECT_EQ(parsed["level"], "warn");
  const std::string msg = parsed["msg"];
  EXPECT_THAT(msg, HasSubstr("\"quoted\" back\\slash"));
  EXPECT_THAT(msg, HasSubstr("new\nline \xc3\xa9"));  // valid UTF-8 kept
  EXPECT_THAT(msg, HasSubstr("\xef\xbf\xbd"));        // \xff became U+FFFD
  EXPECT_THAT(msg, HasSubstr("quoted=\"raw \\xff\\xfe\\x01"));
  for (unsigned char c : line.substr(0, line.size() - 1)) EXPECT_GE(c, 0x20) << line;
}

TEST(LogFormatTest, LogfmtLinesAreOneLineOfValidText) {
  const std::string line = Logged("logfmt", [] { Log().info("x={} y", "a\x01\n\xff\"b"); });
  EXPECT_THAT(line, StartsWith("ts="));
  EXPECT_THAT(line, HasSubstr(" level=info msg=\"x=a\\u0001\\n\xef\xbf\xbd\\\"b y\"\n"));
  EXPECT_EQ(line.find('\n'), line.size() - 1);
}

TEST(LogFormatTest, LongMessagesAreCut) {
  const std::string line = Logged("json", [] { Log().info("{}", std::string(20000, 'x')); });
  EXPECT_LT(line.size(), kLogMessageLimit + 200);
  EXPECT_THAT(nlohmann::json::parse(line)["msg"].get<std::string>(), EndsWith("...(+11808 bytes)"));
}

}  // namespace
}  // namespace devscope
