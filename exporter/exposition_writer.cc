#include "exporter/exposition_writer.h"

#include <charconv>
#include <cmath>

#include "absl/hash/hash.h"

namespace devscope {
namespace {

constexpr absl::string_view kReplacementCharacter = "\xEF\xBF\xBD";  // U+FFFD

bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// The length of the well-formed UTF-8 sequence at the start of `s` (Unicode table 3-7: no
// overlong forms, no surrogates, nothing above U+10FFFF), or 0 when it is not one.
size_t Utf8SequenceLength(absl::string_view s) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char lead = byte(0);
  size_t length = 0;
  unsigned char low = 0x80, high = 0xBF;  // the range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    return 0;
  }
  if (s.size() < length || byte(1) < low || byte(1) > high) return 0;
  for (size_t i = 2; i < length; ++i) {
    if (byte(i) < 0x80 || byte(i) > 0xBF) return 0;
  }
  return length;
}

// Which bytes cannot be copied as they are: backslash, line feed, and every non-ASCII byte (it
// must be checked for UTF-8); the double quote only in label values.
struct SpecialBytes {
  bool in_label[256] = {};
  bool in_help[256] = {};
  constexpr SpecialBytes() {
    for (int c = 0x80; c < 256; ++c) in_label[c] = in_help[c] = true;
    in_label[int{'\\'}] = in_help[int{'\\'}] = true;
    in_label[int{'\n'}] = in_help[int{'\n'}] = true;
    in_label[int{'"'}] = true;
  }
};
constexpr SpecialBytes kSpecial;

// Appends `s` with backslash and line feed escaped, and the double quote too when `quote`; bytes
// that are not UTF-8 become U+FFFD. Runs of plain bytes are appended whole.
void AppendEscaped(std::string& out, absl::string_view s, bool quote) {
  const bool* special = quote ? kSpecial.in_label : kSpecial.in_help;
  size_t plain_from = 0;
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (!special[c]) {
      ++i;
      continue;
    }
    out.append(s.data() + plain_from, i - plain_from);
    if (c < 0x80) {
      out.push_back('\\');
      out.push_back(c == '\n' ? 'n' : static_cast<char>(c));
      ++i;
    } else if (const size_t length = Utf8SequenceLength(s.substr(i)); length > 0) {
      out.append(s.data() + i, length);
      i += length;
    } else {
      out.append(kReplacementCharacter.data(), kReplacementCharacter.size());
      ++i;
    }
    plain_from = i;
  }
  out.append(s.data() + plain_from, s.size() - plain_from);
}

void AppendHeader(std::string& out, absl::string_view name, absl::string_view help,
                  FamilyType type) {
  out.append("# HELP ");
  out.append(name.data(), name.size());
  out.push_back(' ');
  AppendEscaped(out, help, /*quote=*/false);
  out.append("\n# TYPE ");
  out.append(name.data(), name.size());
  out.append(type == FamilyType::kCounter ? " counter\n" : " gauge\n");
}

}  // namespace

bool IsValidMetricName(absl::string_view name) {
  if (name.empty() || !(IsNameStart(name[0]) || name[0] == ':')) return false;
  for (char c : name) {
    if (!(IsNameStart(c) || IsDigit(c) || c == ':')) return false;
  }
  return true;
}

bool IsValidLabelName(absl::string_view name) {
  if (name.empty() || !IsNameStart(name[0]) || name.substr(0, 2) == "__") return false;
  for (char c : name) {
    if (!(IsNameStart(c) || IsDigit(c))) return false;
  }
  return true;
}

void AppendLabel(std::string& out, absl::string_view name, absl::string_view value) {
  if (!out.empty()) out.push_back(',');
  out.append(name.data(), name.size());
  out.append("=\"");
  AppendEscaped(out, value, /*quote=*/true);
  out.push_back('"');
}

void AppendValue(std::string& out, double value) {
  if (std::isnan(value)) {
    out.append("NaN");
    return;
  }
  if (std::isinf(value)) {
    out.append(value > 0 ? "+Inf" : "-Inf");
    return;
  }
  char digits[32];
  std::to_chars_result written;
  // Integers (counts, bytes, 0/1) as integers; anything else in the shortest form that reads back
  // as the same double. 2^53: beyond it not every integer is a double.
  constexpr double kExactIntegers = 9007199254740992.0;
  if (value >= -kExactIntegers && value <= kExactIntegers && value == std::trunc(value)) {
    written = std::to_chars(digits, digits + sizeof(digits), static_cast<int64_t>(value));
  } else {
    written = std::to_chars(digits, digits + sizeof(digits), value);
  }
  out.append(digits, written.ptr - digits);
}

size_t ExpositionWriter::KeyHash::operator()(const SeriesKey& key) const {
  return absl::HashOf(absl::string_view(text->data() + key.offset, key.size));
}

bool ExpositionWriter::KeyEq::operator()(const SeriesKey& a, const SeriesKey& b) const {
  return absl::string_view(text->data() + a.offset, a.size) ==
         absl::string_view(text->data() + b.offset, b.size);
}

ExpositionWriter::ExpositionWriter(std::string& out)
    : out_(out), seen_(0, KeyHash{&out}, KeyEq{&out}) {}

void ExpositionWriter::Family(absl::string_view name, absl::string_view help, FamilyType type) {
  pending_name_ = name;
  pending_help_ = help;
  pending_type_ = type;
  header_pending_ = true;
  ForgetSeries();
}

void ExpositionWriter::Header(absl::string_view name, absl::string_view help, FamilyType type) {
  header_pending_ = false;
  AppendHeader(out_, name, help, type);
  ForgetSeries();
}

void ExpositionWriter::ForgetSeries() {
  few_count_ = 0;
  if (!seen_.empty()) seen_.clear();
}

bool ExpositionWriter::Seen(SeriesKey key) {
  if (!seen_.empty()) return !seen_.insert(key).second;
  const KeyEq equal{&out_};
  for (size_t i = 0; i < few_count_; ++i) {
    if (few_[i].size == key.size && equal(few_[i], key)) return true;
  }
  if (few_count_ < kFewSeries) {
    few_[few_count_++] = key;
    return false;
  }
  seen_.insert(few_, few_ + few_count_);
  seen_.insert(key);
  return false;
}

void ExpositionWriter::WritePendingHeader() {
  header_pending_ = false;
  AppendHeader(out_, pending_name_, pending_help_, pending_type_);
}

void ExpositionWriter::Begin(absl::string_view metric_name) {
  if (header_pending_) WritePendingHeader();
  series_start_ = out_.size();
  has_labels_ = false;
  out_.append(metric_name.data(), metric_name.size());
}

void ExpositionWriter::Label(absl::string_view name, absl::string_view value) {
  out_.push_back(has_labels_ ? ',' : '{');
  has_labels_ = true;
  out_.append(name.data(), name.size());
  out_.append("=\"");
  AppendEscaped(out_, value, /*quote=*/true);
  out_.push_back('"');
}

void ExpositionWriter::Label(absl::string_view name, int64_t value) {
  char digits[24];
  const auto written = std::to_chars(digits, digits + sizeof(digits), value);
  Label(name, absl::string_view(digits, written.ptr - digits));
}

void ExpositionWriter::Labels(absl::string_view rendered) {
  if (rendered.empty()) return;
  out_.push_back(has_labels_ ? ',' : '{');
  has_labels_ = true;
  out_.append(rendered.data(), rendered.size());
}

bool ExpositionWriter::End(double value) {
  if (has_labels_) out_.push_back('}');
  const SeriesKey key{static_cast<uint32_t>(series_start_),
                      static_cast<uint32_t>(out_.size() - series_start_)};
  if (Seen(key)) {
    out_.resize(series_start_);
    return false;
  }
  out_.push_back(' ');
  AppendValue(out_, value);
  out_.push_back('\n');
  return true;
}

}  // namespace devscope
