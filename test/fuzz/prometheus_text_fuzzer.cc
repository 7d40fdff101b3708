// devicedir's metrics.prom: ParsePrometheusText on any bytes. Besides not crashing, what it keeps
// must be what it promises (names, labels, no duplicates, no negative counter), and written out
// again in the format it reads, the kept samples must parse back to themselves without error.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "collectors/prometheus_text_parser.h"
#include "common/label_names.h"
#include "test/fuzz/fuzz_support.h"

namespace devscope {
namespace {

void Fail(const std::string& what) { FuzzFail("prometheus_text_fuzzer", what); }

bool IsName(absl::string_view s, bool colons) {
  if (s.empty() || absl::ascii_isdigit(s[0])) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(c) && c != '_' && !(colons && c == ':')) return false;
  }
  return true;
}

std::string Escape(absl::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out.push_back('\\');
    out.append(c == '\n' ? std::string("\\n") : std::string(1, c));
  }
  return out;
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.17g", v);
  return buffer;
}

bool SameValue(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

void CheckKept(const std::vector<Sample>& samples) {
  std::set<std::string> series;
  for (const Sample& s : samples) {
    if (!absl::StartsWith(s.name, "devscope_device_") || !IsName(s.name, true)) {
      Fail("kept a bad metric name: " + s.name);
    }
    if (s.kind == Sample::Kind::kCounter && s.value < 0) Fail("kept a negative counter");
    LabelPairs sorted = s.labels;
    std::sort(sorted.begin(), sorted.end());
    std::string key = s.name;
    for (size_t i = 0; i < sorted.size(); ++i) {
      const std::string& name = sorted[i].first;
      if (!IsName(name, false) || absl::StartsWith(name, "__") || IsReservedDeviceLabel(name)) {
        Fail("kept a bad label name: " + name);
      }
      if (i > 0 && sorted[i - 1].first == name) Fail("kept a label twice: " + name);
      absl::StrAppend(&key, " ", name.size(), ":", name, sorted[i].second.size(), ":",
                      sorted[i].second);
    }
    if (!series.insert(key).second) Fail("kept a duplicate series of " + s.name);
  }
}

// The kept samples in the text format: counters declared first, then one line per sample.
std::string Rewrite(const std::vector<Sample>& samples) {
  std::string text;
  std::set<std::string> counters;
  for (const Sample& s : samples) {
    if (s.kind == Sample::Kind::kCounter && counters.insert(s.name).second) {
      absl::StrAppend(&text, "# TYPE ", s.name, " counter\n");
    }
  }
  for (const Sample& s : samples) {
    absl::StrAppend(&text, s.name, "{");
    for (const auto& [name, value] : s.labels)
      absl::StrAppend(&text, name, "=\"", Escape(value), "\",");
    absl::StrAppend(&text, "} ", FormatValue(s.value), "\n");
  }
  return text;
}

}  // namespace
}  // namespace devscope

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  devscope::QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace devscope;
  const absl::string_view text = AsText(data, size);
  const Parsed<std::vector<Sample>> parsed = ParsePrometheusText(text);
  CheckLineErrors("prometheus_text_fuzzer", text, parsed.errors);
  CheckKept(parsed.value);

  const Parsed<std::vector<Sample>> again = ParsePrometheusText(Rewrite(parsed.value));
  if (!again.errors.empty()) {
    Fail("rewritten samples refused: " + again.errors[0].problem + "\n" + Rewrite(parsed.value));
  }
  if (again.value.size() != parsed.value.size()) Fail("rewritten samples differ in number");
  for (size_t i = 0; i < again.value.size(); ++i) {
    const Sample& a = parsed.value[i];
    const Sample& b = again.value[i];
    if (a.name != b.name || a.kind != b.kind || a.labels != b.labels ||
        !SameValue(a.value, b.value)) {
      Fail("rewritten sample differs: " + a.name);
    }
  }
  return 0;
}
