// The Prometheus text parser of devicedir's metrics.prom files: text in, samples and per-line
// errors out.
#include "collectors/prometheus_text_parser.h"

#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace devscope {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::SizeIs;

TEST(PrometheusTextParserTest, ParsesValidSamples) {
  const Parsed<std::vector<Sample>> parsed = ParsePrometheusText(
      "# HELP devscope_device_power_watts Board power.\n"
      "# TYPE devscope_device_power_watts gauge\n"
      "devscope_device_power_watts 41.5\n"
      "# a plain comment\n"
      "\n"
      "# TYPE devscope_device_errors_total counter\n"
      "devscope_device_errors_total{kind=\"ecc\\\"x\\\\y\\nz\",bank=\"1\",} 3\n"
      "devscope_device_errors_total{kind=\"pcie\"} 0\n"
      "devscope_device_utilization_ratio NaN\n"
      "devscope_device_temperature_celsius{sensor=\"a\"} +Inf\n"
      "devscope_device_temperature_celsius{sensor=\"b\"} -Inf\n"
      "devscope_device_memory_used_bytes 1.5e9\r\n");
  const std::vector<Sample>& samples = parsed.value;
  const std::vector<std::string> errors = FormatLineErrors("w0/metrics.prom", parsed.errors);
  EXPECT_THAT(errors, SizeIs(0));
  ASSERT_THAT(samples, SizeIs(7));
  EXPECT_EQ(samples[0].name, "devscope_device_power_watts");
  EXPECT_EQ(samples[0].kind, Sample::Kind::kGauge);
  EXPECT_EQ(samples[0].value, 41.5);
  EXPECT_EQ(samples[0].help, "Board power.");
  EXPECT_EQ(samples[1].kind, Sample::Kind::kCounter);
  EXPECT_THAT(samples[1].labels, ElementsAre(Pair("kind", "ecc\"x\\y\nz"), Pair("bank", "1")));
  EXPECT_EQ(samples[1].value, 3);
  EXPECT_TRUE(std::isnan(samples[3].value));
  EXPECT_EQ(samples[4].value, INFINITY);
  EXPECT_EQ(samples[5].value, -INFINITY);
  EXPECT_EQ(samples[6].value, 1.5e9);
}

TEST(PrometheusTextParserTest, ReportsEachBadLineWithFileAndLineAndKeepsTheRest) {
  const Parsed<std::vector<Sample>> parsed = ParsePrometheusText(
      "devscope_device_power_watts 1\n"                     // 1 ok
      "node_cpu_seconds_total 5\n"                          // 2 wrong prefix
      "devscope_device_power_watts{device=\"x\"} 1\n"       // 3 reserved label
      "devscope_device_power_watts{pod=\"x\"} 1\n"          // 4 reserved label
      "devscope_device_power_watts{a=\"x} 1\n"              // 5 unterminated
      "devscope_device_power_watts{a=\"\\t\"} 1\n"          // 6 bad escape
      "devscope_device_link_up\n"                           // 7 missing value
      "devscope_device_link_up abc\n"                       // 8 bad value
      "devscope_device_link_up{x=\"1\"} 1 1700000000000\n"  // 9 timestamp
      "# TYPE devscope_device_lat_seconds histogram\n"      // 10 bad type
      "devscope_device_power_watts 2\n"                     // 11 duplicate series
      "# TYPE devscope_device_power_watts counter\n"        // 12 TYPE after samples
      "{a=\"b\"} 1\n"                                       // 13 no name
      "devscope_device_temperature_celsius 60\n");          // 14 ok
  const std::vector<Sample>& samples = parsed.value;
  const std::vector<std::string> errors = FormatLineErrors("dir/metrics.prom", parsed.errors);
  ASSERT_THAT(samples, SizeIs(2));
  EXPECT_EQ(samples[0].name, "devscope_device_power_watts");
  EXPECT_EQ(samples[0].value, 1);
  EXPECT_EQ(samples[1].name, "devscope_device_temperature_celsius");
  ASSERT_THAT(errors, SizeIs(12));
  const int expected_lines[] = {2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13};
  for (size_t i = 0; i < errors.size(); ++i) {
    EXPECT_THAT(errors[i],
                ::testing::StartsWith(absl::StrCat("dir/metrics.prom:", expected_lines[i], ": ")));
  }
  EXPECT_THAT(errors[0], HasSubstr("does not start with devscope_device_"));
  EXPECT_THAT(errors[1], HasSubstr("label device is set by devscope"));
  EXPECT_THAT(errors[7], HasSubstr("timestamps are not supported"));
  EXPECT_THAT(errors[8], HasSubstr("not gauge or counter"));
  EXPECT_THAT(errors[9], HasSubstr("duplicate series"));
}

TEST(PrometheusTextParserTest, RefusesNegativeCounter) {
  const Parsed<std::vector<Sample>> parsed = ParsePrometheusText(
      "# TYPE devscope_device_energy_joules_total counter\n"
      "devscope_device_energy_joules_total -1\n");
  const std::vector<Sample>& samples = parsed.value;
  const std::vector<std::string> errors = FormatLineErrors("f", parsed.errors);
  EXPECT_THAT(samples, SizeIs(0));
  EXPECT_THAT(errors, ElementsAre(HasSubstr("f:2: counter")));
}

// Prometheus treats a label with an empty value as absent, so x{a=""} and x are one series: the
// label is dropped and the second line is a duplicate (found by test/fuzz's view target, whose
// exposition check refused the scrape).
TEST(PrometheusTextParserTest, ALabelWithAnEmptyValueIsNoLabel) {
  const Parsed<std::vector<Sample>> parsed = ParsePrometheusText(
      "devscope_device_x{a=\"\",b=\"1\"} 1\n"
      "devscope_device_x{b=\"1\"} 2\n");
  ASSERT_THAT(parsed.value, SizeIs(1));
  EXPECT_THAT(parsed.value[0].labels, ElementsAre(Pair("b", "1")));
  EXPECT_THAT(FormatLineErrors("f", parsed.errors),
              ElementsAre(HasSubstr("f:2: duplicate series")));
}

TEST(PrometheusTextParserTest, SurvivesGarbage) {
  std::string garbage;
  for (int i = 0; i < 2000; ++i) garbage.push_back(static_cast<char>((i * 131 + 7) % 256));
  garbage += "\ndevscope_device_power_watts{\n}\n\"\n{{{{\ndevscope_device_x{a=\"\\";
  const Parsed<std::vector<Sample>> parsed = ParsePrometheusText(garbage);
  EXPECT_THAT(parsed.value, SizeIs(0));
  EXPECT_FALSE(parsed.errors.empty());
}

}  // namespace
}  // namespace devscope
