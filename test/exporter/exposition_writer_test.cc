// The text-format writer: names, escaping, UTF-8 repair, values, HELP/TYPE once per family and
// never for an empty one, duplicate series dropped; every text it makes passes promtool.
#include "exporter/exposition_writer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "absl/strings/numbers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/integration/devscope_process.h"

namespace devscope {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string Value(double v) {
  std::string out;
  AppendValue(out, v);
  return out;
}

TEST(ExpositionWriterTest, ValuesReadBackExactly) {
  EXPECT_EQ(Value(0), "0");
  EXPECT_EQ(Value(-0.0), "0");
  EXPECT_EQ(Value(1), "1");
  EXPECT_EQ(Value(-42), "-42");
  EXPECT_EQ(Value(1073741824), "1073741824");
  EXPECT_EQ(Value(0.5), "0.5");
  EXPECT_EQ(Value(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(Value(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(Value(std::nan("")), "NaN");
  // Anything else in a form that parses back to the very same double.
  for (double v : {0.1, 1.0 / 3, 1e-300, 123456.789, 9007199254740993.0 * 4, -2.5e22,
                   std::numeric_limits<double>::min(), std::numeric_limits<double>::max(),
                   std::numeric_limits<double>::denorm_min()}) {
    double back = 0;
    ASSERT_TRUE(absl::SimpleAtod(Value(v), &back)) << Value(v);
    EXPECT_EQ(back, v) << Value(v);
  }
}

TEST(ExpositionWriterTest, NamesFollowTheDataModel) {
  EXPECT_TRUE(IsValidMetricName("devscope_device_power_watts"));
  EXPECT_TRUE(IsValidMetricName("a:b_c1"));
  EXPECT_TRUE(IsValidMetricName(":recorded"));
  EXPECT_FALSE(IsValidMetricName(""));
  EXPECT_FALSE(IsValidMetricName("1abc"));
  EXPECT_FALSE(IsValidMetricName("a-b"));
  EXPECT_FALSE(IsValidMetricName("a b"));
  EXPECT_FALSE(IsValidMetricName("caf\xc3\xa9"));
  EXPECT_TRUE(IsValidLabelName("kind"));
  EXPECT_TRUE(IsValidLabelName("_x9"));
  EXPECT_FALSE(IsValidLabelName("__name__"));
  EXPECT_FALSE(IsValidLabelName("a:b"));
  EXPECT_FALSE(IsValidLabelName("9a"));
  EXPECT_FALSE(IsValidLabelName(""));
}

TEST(ExpositionWriterTest, EscapesLabelValuesAndHelp) {
  std::string out;
  ExpositionWriter w(out);
  w.Family("m", "a \\ help\nwith \"quotes\"", FamilyType::kGauge);
  w.Begin("m");
  w.Label("a", "back\\slash \"quoted\"\nnext line");
  w.End(1);
  EXPECT_EQ(out,
            "# HELP m a \\\\ help\\nwith \"quotes\"\n# TYPE m gauge\n"
            "m{a=\"back\\\\slash \\\"quoted\\\"\\nnext line\"} 1\n");
  EXPECT_EQ(PromtoolCheck(out), "");
}

TEST(ExpositionWriterTest, BytesThatAreNotUtf8BecomeTheReplacementCharacter) {
  std::string out;
  ExpositionWriter w(out);
  w.Family("m", "h", FamilyType::kGauge);
  // Good multibyte text is kept; a lone continuation byte, a truncated sequence, an overlong
  // form and a surrogate are each replaced.
  w.Begin("m");
  w.Label("good", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  w.Label("bad",
          "a\x80"
          "b\xe2\x82"
          "c\xc0\xaf"
          "d\xed\xa0\x80");
  w.End(1);
  EXPECT_THAT(out, HasSubstr("good=\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""));
  EXPECT_THAT(out, HasSubstr("bad=\"a\xEF\xBF\xBD"
                             "b\xEF\xBF\xBD\xEF\xBF\xBD"
                             "c"));
  EXPECT_EQ(PromtoolCheck(out), "");
}

TEST(ExpositionWriterTest, HeaderOncePerFamilyAndNoneForAnEmptyFamily) {
  std::string out;
  ExpositionWriter w(out);
  w.Family("empty", "nothing follows", FamilyType::kGauge);
  w.Family("c_total", "a counter", FamilyType::kCounter);
  for (int i = 0; i < 3; ++i) {
    w.Begin("c_total");
    w.Label("i", int64_t{i});
    w.End(i);
  }
  EXPECT_THAT(out, Not(HasSubstr("empty")));
  EXPECT_EQ(out,
            "# HELP c_total a counter\n# TYPE c_total counter\n"
            "c_total{i=\"0\"} 0\nc_total{i=\"1\"} 1\nc_total{i=\"2\"} 2\n");
  // Header writes at once, series or not.
  w.Header("h", "help", FamilyType::kGauge);
  EXPECT_THAT(out, HasSubstr("# HELP h help\n# TYPE h gauge\n"));
}

TEST(ExpositionWriterTest, DuplicateSeriesAreDroppedWithinAScope) {
  std::string out;
  ExpositionWriter w(out);
  w.Family("m", "h", FamilyType::kGauge);
  const auto series = [&](absl::string_view a, double v) {
    w.Begin("m");
    w.Label("a", a);
    return w.End(v);
  };
  EXPECT_TRUE(series("x", 1));
  EXPECT_TRUE(series("y", 2));
  EXPECT_FALSE(series("x", 3));  // same labels, other value: still a duplicate
  w.Begin("m");
  w.End(4);
  w.Begin("m");
  EXPECT_FALSE(w.End(5));  // no labels twice
  EXPECT_EQ(out, "# HELP m h\n# TYPE m gauge\nm{a=\"x\"} 1\nm{a=\"y\"} 2\nm 4\n");
  EXPECT_EQ(PromtoolCheck(out), "");
  // Pre-rendered label text counts the same as labels written one by one.
  std::string labels;
  AppendLabel(labels, "a", "y");
  w.Begin("m");
  w.Labels(labels);
  EXPECT_FALSE(w.End(6));
  // A new scope forgets.
  w.ForgetSeries();
  EXPECT_TRUE(series("x", 7));
}

TEST(ExpositionWriterTest, ManyFamiliesOfManySeriesPassPromtool) {
  std::string out;
  ExpositionWriter w(out);
  std::string prefix;
  AppendLabel(prefix, "resource", "example.com/w");
  AppendLabel(prefix, "device", "w-\"0\"");
  for (int f = 0; f < 20; ++f) {
    const bool counter = f % 2 == 1;
    const std::string name = "devscope_device_f" + std::to_string(f) + (counter ? "_total" : "");
    // Family() keeps views of the name and help until the first series (found by ASan: a
    // temporary help string was gone by then).
    const std::string help = "Family \\ " + std::to_string(f);
    w.Family(name, help, counter ? FamilyType::kCounter : FamilyType::kGauge);
    for (int s = 0; s < 500; ++s) {
      w.Begin(name);
      w.Labels(prefix);
      w.Label("n", int64_t{s % 250});  // every series twice: the second is dropped
      w.Label("numa_node", "");
      w.End(s % 3 == 0 ? std::nan("") : s * 0.25);
    }
  }
  EXPECT_EQ(PromtoolCheck(out), "");
  // 20 families x 250 distinct series, and 2 header lines each.
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 20 * (250 + 2));
}

}  // namespace
}  // namespace devscope
