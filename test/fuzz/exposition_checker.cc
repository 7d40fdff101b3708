#include "test/fuzz/exposition_checker.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace devscope {
namespace {

bool IsAsciiLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsAsciiDigit(char c) { return c >= '0' && c <= '9'; }

bool IsMetricName(absl::string_view s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool ok = IsAsciiLetter(c) || c == '_' || c == ':' || (i > 0 && IsAsciiDigit(c));
    if (!ok) return false;
  }
  return true;
}

bool IsLabelName(absl::string_view s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (!(IsAsciiLetter(c) || c == '_' || (i > 0 && IsAsciiDigit(c)))) return false;
  }
  return true;
}

// What Go's strconv.ParseFloat (Prometheus' parser) takes in an exposition: decimal floats,
// NaN and infinities. Hexadecimal floats are accepted by Go too but never written by a client.
bool IsSampleValue(absl::string_view s) {
  if (s == "NaN" || s == "+Inf" || s == "-Inf" || s == "Inf") return true;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) s.remove_prefix(1);
  if (s.empty() || !(IsAsciiDigit(s[0]) || s[0] == '.')) return false;
  double value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  return ec == std::errc() && end == s.data() + s.size();
}

bool IsTimestamp(absl::string_view s) {
  if (!s.empty() && s[0] == '-') s.remove_prefix(1);
  return !s.empty() && std::all_of(s.begin(), s.end(), IsAsciiDigit);
}

// Reads the escaped text of a label value after its opening quote; sets `end` past the closing
// quote. Returns a problem, empty when fine.
std::string ReadLabelValue(absl::string_view line, size_t& i, std::string& value) {
  while (i < line.size()) {
    const char c = line[i++];
    if (c == '"') {
      return IsValidUtf8(value) ? "" : "label value is not valid UTF-8";
    }
    if (c != '\\') {
      value.push_back(c);
      continue;
    }
    if (i == line.size()) break;
    const char e = line[i++];
    if (e == '\\' || e == '"') {
      value.push_back(e);
    } else if (e == 'n') {
      value.push_back('\n');
    } else {
      return absl::StrCat("invalid escape \\", std::string(1, e), " in a label value");
    }
  }
  return "unterminated label value";
}

struct SampleLine {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;
};

// Parses NAME[{LABELS}] VALUE [TIMESTAMP]. Returns a problem, empty when fine.
std::string ParseSampleLine(absl::string_view line, SampleLine& out) {
  size_t i = 0;
  while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
  out.name = std::string(line.substr(0, i));
  if (!IsMetricName(out.name)) return absl::StrCat("invalid metric name \"", out.name, "\"");
  if (i < line.size() && line[i] == '{') {
    ++i;
    std::set<std::string> names;
    while (true) {
      if (i < line.size() && line[i] == '}') {
        ++i;
        break;
      }
      const size_t start = i;
      while (i < line.size() && line[i] != '=') ++i;
      const std::string name(line.substr(start, i - start));
      if (!IsLabelName(name)) return absl::StrCat("invalid label name \"", name, "\"");
      if (absl::StartsWith(name, "__")) return absl::StrCat("reserved label name ", name);
      if (!names.insert(name).second) return absl::StrCat("label ", name, " given twice");
      if (i + 1 >= line.size() || line[i + 1] != '"') return "expected =\" after a label name";
      i += 2;
      std::string value;
      if (std::string problem = ReadLabelValue(line, i, value); !problem.empty()) return problem;
      out.labels.emplace_back(name, std::move(value));
      if (i < line.size() && line[i] == ',') {
        ++i;
      } else if (i >= line.size() || line[i] != '}') {
        return "expected , or } after a label value";
      }
    }
  }
  if (i >= line.size() || line[i] != ' ') return "expected a space before the value";
  const std::vector<absl::string_view> rest = absl::StrSplit(line.substr(i + 1), ' ');
  if (rest.empty() || rest.size() > 2) return "expected a value and an optional timestamp";
  if (!IsSampleValue(rest[0])) return absl::StrCat("invalid value \"", rest[0], "\"");
  if (rest.size() == 2 && !IsTimestamp(rest[1])) return "invalid timestamp";
  return "";
}

// HELP text: escapes \\ and \n only, valid UTF-8 once unescaped.
std::string CheckHelpText(absl::string_view text) {
  std::string unescaped;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\') {
      unescaped.push_back(text[i]);
      continue;
    }
    if (i + 1 == text.size() || (text[i + 1] != '\\' && text[i + 1] != 'n')) {
      return "invalid escape in HELP text";
    }
    unescaped.push_back(text[++i] == 'n' ? '\n' : '\\');
  }
  return IsValidUtf8(unescaped) ? "" : "HELP text is not valid UTF-8";
}

// The family a sample belongs to: its name, or for histograms and summaries the name without the
// suffix their samples carry.
std::string FamilyOf(const std::string& name, const std::map<std::string, std::string>& types) {
  for (absl::string_view suffix : {"_bucket", "_count", "_sum"}) {
    if (!absl::EndsWith(name, suffix)) continue;
    const std::string base = name.substr(0, name.size() - suffix.size());
    auto it = types.find(base);
    if (it != types.end() &&
        (it->second == "histogram" || (it->second == "summary" && suffix != "_bucket"))) {
      return base;
    }
  }
  return name;
}

class Checker {
 public:
  std::string Line(absl::string_view line) {
    if (line.empty()) return "";
    if (line[0] == '#') return Comment(line);
    SampleLine sample;
    if (std::string problem = ParseSampleLine(line, sample); !problem.empty()) return problem;
    const std::string family = FamilyOf(sample.name, types_);
    if (std::string problem = Enter(family); !problem.empty()) return problem;
    with_samples_.insert(family);
    std::vector<std::pair<std::string, std::string>> identity;
    for (auto& label : sample.labels) {
      if (!label.second.empty()) identity.push_back(std::move(label));
    }
    std::sort(identity.begin(), identity.end());
    // Lengths first, so that no name or value can imitate a separator.
    std::string key = sample.name;
    for (const auto& [name, value] : identity) {
      absl::StrAppend(&key, " ", name.size(), ":", name, value.size(), ":", value);
    }
    if (!series_.insert(std::move(key)).second) {
      return absl::StrCat("duplicate series of ", sample.name);
    }
    return "";
  }

 private:
  std::string Comment(absl::string_view line) {
    const bool help = absl::StartsWith(line, "# HELP ");
    const bool type = absl::StartsWith(line, "# TYPE ");
    if (!help && !type) return "";  // any other comment
    const absl::string_view rest = line.substr(7);
    const size_t space = rest.find(' ');
    const std::string name(rest.substr(0, space));
    if (!IsMetricName(name)) return absl::StrCat("invalid metric name \"", name, "\" in a comment");
    if (std::string problem = Enter(name); !problem.empty()) return problem;
    const absl::string_view text =
        space == absl::string_view::npos ? absl::string_view() : rest.substr(space + 1);
    if (help) {
      if (!helps_.insert(name).second) return absl::StrCat("second HELP for ", name);
      return CheckHelpText(text);
    }
    if (types_.count(name) > 0) return absl::StrCat("second TYPE for ", name);
    if (with_samples_.count(name) > 0) return absl::StrCat("TYPE for ", name, " after samples");
    if (text != "counter" && text != "gauge" && text != "histogram" && text != "summary" &&
        text != "untyped") {
      return absl::StrCat("unknown type \"", text, "\" for ", name);
    }
    types_.emplace(name, std::string(text));
    return "";
  }

  // Moves to `family`'s group; a family seen before that is not the current one is split.
  std::string Enter(const std::string& family) {
    if (family == current_) return "";
    if (!families_.insert(family).second) {
      return absl::StrCat("lines of ", family, " are not in one group");
    }
    current_ = family;
    return "";
  }

  std::string current_;
  std::set<std::string> families_;
  std::set<std::string> helps_;
  std::map<std::string, std::string> types_;
  std::set<std::string> with_samples_;
  std::set<std::string> series_;
};

}  // namespace

bool IsValidUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t length = 0;
    uint32_t code = 0;
    uint32_t min = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      length = 2, code = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      length = 3, code = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      length = 4, code = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (i + length > s.size()) return false;
    for (size_t k = 1; k < length; ++k) {
      const unsigned char next = static_cast<unsigned char>(s[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      code = (code << 6) | (next & 0x3F);
    }
    if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return false;
    i += length;
  }
  return true;
}

absl::Status CheckExposition(absl::string_view text) {
  if (text.empty()) return absl::OkStatus();
  if (text.back() != '\n') return absl::InvalidArgumentError("the last line has no newline");
  text.remove_suffix(1);
  Checker checker;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    if (std::string problem = checker.Line(line); !problem.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", line_no, ": ", problem, ": \"", line, "\""));
    }
  }
  return absl::OkStatus();
}

}  // namespace devscope
