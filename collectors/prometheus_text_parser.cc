#include "collectors/prometheus_text_parser.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/label_names.h"
#include "common/log.h"

namespace devscope {
namespace {

constexpr absl::string_view kSamplePrefix = "devscope_device_";

bool IsMetricNameStart(char c) { return absl::ascii_isalpha(c) || c == '_' || c == ':'; }
bool IsMetricNameChar(char c) { return absl::ascii_isalnum(c) || c == '_' || c == ':'; }
bool IsLabelNameStart(char c) { return absl::ascii_isalpha(c) || c == '_'; }
bool IsLabelNameChar(char c) { return absl::ascii_isalnum(c) || c == '_'; }
bool IsBlank(char c) { return c == ' ' || c == '\t'; }

void SkipBlanks(absl::string_view s, size_t& i) {
  while (i < s.size() && IsBlank(s[i])) ++i;
}

// Reads a metric name at s[i...]; empty when there is none.
absl::string_view TakeMetricName(absl::string_view s, size_t& i) {
  const size_t start = i;
  if (i < s.size() && IsMetricNameStart(s[i])) {
    ++i;
    while (i < s.size() && IsMetricNameChar(s[i])) ++i;
  }
  return s.substr(start, i - start);
}

// Reads a word (up to a blank) at s[i...].
absl::string_view TakeWord(absl::string_view s, size_t& i) {
  const size_t start = i;
  while (i < s.size() && !IsBlank(s[i])) ++i;
  return s.substr(start, i - start);
}

// A sample value: a float, NaN, +Inf, -Inf (Prometheus spells them so; case is not significant).
std::optional<double> ParseSampleValue(absl::string_view token) {
  if (absl::EqualsIgnoreCase(token, "nan")) return std::numeric_limits<double>::quiet_NaN();
  if (absl::EqualsIgnoreCase(token, "+inf") || absl::EqualsIgnoreCase(token, "inf")) {
    return std::numeric_limits<double>::infinity();
  }
  if (absl::EqualsIgnoreCase(token, "-inf")) return -std::numeric_limits<double>::infinity();
  if (token.empty()) return std::nullopt;
  for (char c : token) {
    if (!absl::ascii_isdigit(c) && c != '.' && c != 'e' && c != 'E' && c != '+' && c != '-') {
      return std::nullopt;
    }
  }
  if (token[0] == '+') token.remove_prefix(1);
  double value = 0;
  const auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), value);
  if (ec != std::errc() || end != token.data() + token.size()) return std::nullopt;
  return value;
}

// HELP text escapes: \\ and \n.
std::string UnescapeHelp(absl::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size() && (text[i + 1] == '\\' || text[i + 1] == 'n')) {
      out.push_back(text[i + 1] == 'n' ? '\n' : '\\');
      ++i;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

// A label value after its opening quote, up to and past the closing one. Returns an error
// message, empty when fine.
std::string TakeLabelValue(absl::string_view s, size_t& i, absl::string_view name,
                           std::string& value) {
  while (i < s.size()) {
    const char c = s[i++];
    if (c == '"') return "";
    if (c != '\\') {
      value.push_back(c);
      continue;
    }
    if (i >= s.size()) break;
    const char e = s[i++];
    if (e == '\\') {
      value.push_back('\\');
    } else if (e == '"') {
      value.push_back('"');
    } else if (e == 'n') {
      value.push_back('\n');
    } else {
      return absl::StrCat("bad escape ", QuoteForLog(absl::StrCat("\\", std::string(1, e))),
                          " in label ", name);
    }
  }
  return absl::StrCat("unterminated value of label ", name);
}

// One name="value" pair at s[i...] (blanks skipped). Returns an error message, empty when fine.
std::string TakeLabel(absl::string_view s, size_t& i, LabelPairs& labels) {
  const size_t name_start = i;
  if (!IsLabelNameStart(s[i])) return absl::StrCat("bad label name at column ", i + 1);
  while (i < s.size() && IsLabelNameChar(s[i])) ++i;
  const absl::string_view name = s.substr(name_start, i - name_start);
  if (absl::StartsWith(name, "__")) return absl::StrCat("label name ", name, " is reserved");
  if (IsReservedDeviceLabel(name)) {
    return absl::StrCat("label ", name, " is set by devscope and may not be given");
  }
  for (const auto& [existing, unused] : labels) {
    if (existing == name) return absl::StrCat("label ", name, " given twice");
  }
  SkipBlanks(s, i);
  if (i >= s.size() || s[i] != '=') return absl::StrCat("expected = after label ", name);
  ++i;
  SkipBlanks(s, i);
  if (i >= s.size() || s[i] != '"') return absl::StrCat("expected \" after ", name, "=");
  ++i;
  std::string value;
  if (std::string problem = TakeLabelValue(s, i, name, value); !problem.empty()) return problem;
  labels.emplace_back(std::string(name), std::move(value));
  return "";
}

// Parses `{name="value",...}` starting at s[i] == '{'. Returns an error message, empty when fine.
std::string ParseLabels(absl::string_view s, size_t& i, LabelPairs& labels) {
  ++i;  // '{'
  while (true) {
    SkipBlanks(s, i);
    if (i >= s.size()) return "unterminated label set";
    if (s[i] == '}') {
      ++i;
      return "";
    }
    if (std::string problem = TakeLabel(s, i, labels); !problem.empty()) return problem;
    const absl::string_view name = labels.back().first;
    SkipBlanks(s, i);
    if (i < s.size() && s[i] == ',') {
      ++i;
      continue;
    }
    if (i < s.size() && s[i] == '}') {
      ++i;
      return "";
    }
    return absl::StrCat("expected , or } after label ", name);
  }
}

// Identity of a series for duplicate detection: name and labels in sorted order.
std::string SeriesKey(const Sample& sample) {
  LabelPairs sorted = sample.labels;
  std::sort(sorted.begin(), sorted.end());
  std::string key = sample.name;
  for (const auto& [k, v] : sorted) absl::StrAppend(&key, "\x1f", k, "\x1e", v);
  return key;
}

// The parser's state across lines: what # TYPE and # HELP said, and which series were seen.
class TextParser {
 public:
  Parsed<std::vector<Sample>> Parse(absl::string_view text) {
    Parsed<std::vector<Sample>> out;
    int line_no = 0;
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      ++line_no;
      absl::ConsumeSuffix(&line, "\r");
      size_t i = 0;
      SkipBlanks(line, i);
      if (i == line.size()) continue;
      std::string problem =
          line[i] == '#' ? ParseComment(line, i + 1) : ParseSample(line, i, out.value);
      if (!problem.empty()) out.errors.push_back({line_no, std::move(problem)});
    }
    for (Sample& sample : out.value) {
      const auto help = helps_.find(sample.name);
      if (help != helps_.end()) sample.help = help->second;
    }
    return out;
  }

 private:
  // A comment line after its '#': "# HELP", "# TYPE", or a plain comment (ignored).
  std::string ParseComment(absl::string_view line, size_t i) {
    SkipBlanks(line, i);
    const absl::string_view word = TakeWord(line, i);
    if (word != "HELP" && word != "TYPE") return "";  // a plain comment
    SkipBlanks(line, i);
    const absl::string_view name = TakeMetricName(line, i);
    if (name.empty()) return absl::StrCat("# ", word, " without a metric name");
    if (!absl::StartsWith(name, kSamplePrefix)) {
      return absl::StrCat("metric ", name, " does not start with ", kSamplePrefix);
    }
    if (i < line.size() && !IsBlank(line[i])) return absl::StrCat("bad metric name in # ", word);
    SkipBlanks(line, i);
    const absl::string_view rest = line.substr(i);
    if (word == "HELP") {
      if (!helps_.emplace(std::string(name), UnescapeHelp(rest)).second) {
        return absl::StrCat("second # HELP for ", name);
      }
      return "";
    }
    const absl::string_view type = absl::StripTrailingAsciiWhitespace(rest);
    if (types_.count(name) > 0) return absl::StrCat("second # TYPE for ", name);
    if (names_with_samples_.count(name) > 0) {
      return absl::StrCat("# TYPE for ", name, " after its samples");
    }
    if (type == "gauge") {
      types_.emplace(std::string(name), Sample::Kind::kGauge);
    } else if (type == "counter") {
      types_.emplace(std::string(name), Sample::Kind::kCounter);
    } else {
      return absl::StrCat("type ", QuoteForLog(type), " of ", name, " is not gauge or counter");
    }
    return "";
  }

  // A sample line: NAME[{LABELS}] VALUE.
  std::string ParseSample(absl::string_view line, size_t i, std::vector<Sample>& samples) {
    Sample sample;
    const absl::string_view name = TakeMetricName(line, i);
    if (name.empty()) return "expected a metric name";
    if (!absl::StartsWith(name, kSamplePrefix)) {
      return absl::StrCat("metric ", name, " does not start with ", kSamplePrefix);
    }
    sample.name = std::string(name);
    SkipBlanks(line, i);
    if (i < line.size() && line[i] == '{') {
      if (std::string problem = ParseLabels(line, i, sample.labels); !problem.empty()) {
        return problem;
      }
      // To Prometheus a label with an empty value is no label: x{a=""} and x are one series,
      // and exporting both would be a duplicate.
      std::erase_if(sample.labels, [](const auto& label) { return label.second.empty(); });
    }
    SkipBlanks(line, i);
    const absl::string_view value_text = TakeWord(line, i);
    if (value_text.empty()) return absl::StrCat("missing value for ", name);
    const std::optional<double> value = ParseSampleValue(value_text);
    if (!value.has_value())
      return absl::StrCat("bad value ", QuoteForLog(value_text), " for ", name);
    SkipBlanks(line, i);
    if (i < line.size()) {
      return absl::StrCat("unexpected ", QuoteForLog(line.substr(i)), " after the value of ", name,
                          " (timestamps are not supported)");
    }
    sample.value = *value;
    const auto type = types_.find(name);
    sample.kind = type == types_.end() ? Sample::Kind::kGauge : type->second;
    if (sample.kind == Sample::Kind::kCounter && sample.value < 0) {
      return absl::StrCat("counter ", name, " is negative");
    }
    if (!series_.insert(SeriesKey(sample)).second) {
      return absl::StrCat("duplicate series of ", name);
    }
    names_with_samples_.insert(sample.name);
    samples.push_back(std::move(sample));
    return "";
  }

  std::map<std::string, Sample::Kind, std::less<>> types_;
  std::map<std::string, std::string, std::less<>> helps_;
  std::set<std::string, std::less<>> names_with_samples_;
  std::set<std::string> series_;
};

}  // namespace

Parsed<std::vector<Sample>> ParsePrometheusText(absl::string_view text) {
  return TextParser().Parse(text);
}

}  // namespace devscope
