// The fuzz targets' exposition checker must refuse what Prometheus refuses, or a fuzz run that
// finds nothing proves nothing.
#include "test/fuzz/exposition_checker.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace devscope {
namespace {

using ::testing::HasSubstr;

std::string Problem(const std::string& text) {
  return std::string(CheckExposition(text).message());
}

TEST(ExpositionCheckerTest, AcceptsWellFormedText) {
  EXPECT_TRUE(CheckExposition("").ok());
  EXPECT_TRUE(CheckExposition("# HELP a_b Help with \\\\ and \\n.\n"
                              "# TYPE a_b gauge\n"
                              "a_b{x=\"1\",y=\"q\\\"\\\\\\n\"} 1\n"
                              "a_b{x=\"2\"} NaN\n"
                              "a_b -Inf 1700000000000\n"
                              "# a plain comment\n"
                              "c:d_total{z=\"\xc3\xa9\",} 1.5e-3\n"
                              "h_bucket{le=\"+Inf\"} 2\n")
                  .ok());
  EXPECT_TRUE(
      CheckExposition("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n").ok());
}

TEST(ExpositionCheckerTest, RefusesBadNames) {
  EXPECT_THAT(Problem("1abc 1\n"), HasSubstr("invalid metric name"));
  EXPECT_THAT(Problem("a-b 1\n"), HasSubstr("invalid metric name"));
  EXPECT_THAT(Problem("a{b:c=\"1\"} 1\n"), HasSubstr("invalid label name"));
  EXPECT_THAT(Problem("a{__name__=\"1\"} 1\n"), HasSubstr("reserved label name"));
  EXPECT_THAT(Problem("a{b=\"1\",b=\"2\"} 1\n"), HasSubstr("given twice"));
  EXPECT_THAT(Problem("# TYPE a-b gauge\n"), HasSubstr("invalid metric name"));
}

TEST(ExpositionCheckerTest, RefusesBadValuesAndEscapes) {
  EXPECT_THAT(Problem("a{b=\"\\t\"} 1\n"), HasSubstr("invalid escape"));
  EXPECT_THAT(Problem("a{b=\"x} 1\n"), HasSubstr("unterminated"));
  EXPECT_THAT(Problem("a{b=\"\xff\"} 1\n"), HasSubstr("not valid UTF-8"));
  EXPECT_THAT(Problem("a{b=\"\xed\xa0\x80\"} 1\n"), HasSubstr("not valid UTF-8"));  // surrogate
  EXPECT_THAT(Problem("a{b=\"\xc0\xaf\"} 1\n"), HasSubstr("not valid UTF-8"));      // overlong
  EXPECT_THAT(Problem("# HELP a \xff\n"), HasSubstr("not valid UTF-8"));
  EXPECT_THAT(Problem("# HELP a x\\y\n"), HasSubstr("invalid escape"));
  EXPECT_THAT(Problem("a one\n"), HasSubstr("invalid value"));
  EXPECT_THAT(Problem("a 1 2 3\n"), HasSubstr("optional timestamp"));
  EXPECT_THAT(Problem("a 1 x\n"), HasSubstr("invalid timestamp"));
  EXPECT_THAT(Problem("a{b=\"1\"}1\n"), HasSubstr("space before the value"));
  EXPECT_THAT(Problem("a 1"), HasSubstr("no newline"));
}

TEST(ExpositionCheckerTest, RefusesRepeatedOrLateMetadata) {
  EXPECT_THAT(Problem("# HELP a x\n# HELP a y\na 1\n"), HasSubstr("second HELP"));
  EXPECT_THAT(Problem("# TYPE a gauge\n# TYPE a gauge\n"), HasSubstr("second TYPE"));
  EXPECT_THAT(Problem("a 1\n# TYPE a gauge\n"), HasSubstr("after samples"));
  EXPECT_THAT(Problem("# TYPE a meter\n"), HasSubstr("unknown type"));
  EXPECT_THAT(Problem("a 1\nb 1\na{x=\"1\"} 1\n"), HasSubstr("not in one group"));
  EXPECT_THAT(Problem("# TYPE a gauge\nb 1\n# HELP a x\n"), HasSubstr("not in one group"));
}

TEST(ExpositionCheckerTest, RefusesDuplicateSeries) {
  EXPECT_THAT(Problem("a 1\na 2\n"), HasSubstr("duplicate series"));
  EXPECT_THAT(Problem("a{x=\"1\",y=\"2\"} 1\na{y=\"2\",x=\"1\"} 1\n"),
              HasSubstr("duplicate series"));
  // A label with an empty value is no label, to Prometheus.
  EXPECT_THAT(Problem("a{x=\"1\",y=\"\"} 1\na{x=\"1\"} 1\n"), HasSubstr("duplicate series"));
  EXPECT_TRUE(CheckExposition("a{x=\"1\"} 1\na{x=\"2\"} 1\n").ok());
}

TEST(ExpositionCheckerTest, Utf8) {
  EXPECT_TRUE(IsValidUtf8("plain \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xc3"));
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\x80"));
}

}  // namespace
}  // namespace devscope
