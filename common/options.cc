#include "common/options.h"

#include <sys/stat.h>

#include <cmath>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/units.h"

namespace devscope {
namespace {

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string ParentDirectory(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Flags: lower-case letters, digits, '.', '-'. Key segments: lower-case letters, digits, '_'.
bool IsWellFormed(absl::string_view name, absl::string_view punctuation) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) &&
        punctuation.find(c) == absl::string_view::npos) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string Option::KeyName() const { return absl::StrJoin(key, "."); }

std::string Option::Name() const { return flag.empty() ? KeyName() : flag; }

Option& Option::Group(std::string name) {
  group = std::move(name);
  return *this;
}

Option& Option::DocNote(std::string markdown) {
  doc_note = std::move(markdown);
  return *this;
}

Option& Option::Check(std::function<absl::Status()> check) {
  checks.push_back([check = std::move(check)](const Option&) { return check(); });
  return *this;
}

Option& Option::MustBeDirectory(std::function<bool()> applies) {
  checks.push_back([applies = std::move(applies)](const Option& option) {
    if (option.source == OptionSource::kDefault || (applies && !applies())) {
      return absl::OkStatus();
    }
    const std::string path = option.value.text();
    if (IsDirectory(path)) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(path, " is not a directory"));
  });
  return *this;
}

Option& Option::ParentMustBeDirectory() {
  checks.push_back([](const Option& option) {
    if (option.source == OptionSource::kDefault) return absl::OkStatus();
    const std::string parent = ParentDirectory(option.value.text());
    if (IsDirectory(parent)) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat("directory ", parent, " does not exist"));
  });
  return *this;
}

Option* OptionSet::FindFlag(absl::string_view flag) const {
  for (const auto& option : options_) {
    if (!option->flag.empty() && (option->flag == flag || option->negated_flag == flag)) {
      return option.get();
    }
  }
  return nullptr;
}

absl::Status OptionSet::RunChecks() const {
  for (const auto& option : options_) {
    for (const auto& check : option->checks) {
      const absl::Status status = check(*option);
      if (!status.ok()) {
        return absl::Status(status.code(), absl::StrCat(option->Name(), ": ", status.message()));
      }
    }
  }
  return absl::OkStatus();
}

void OptionSet::Note(std::string problem) {
  if (status_.ok()) status_ = absl::InternalError(std::move(problem));
}

Option& OptionSet::Add(Option option) {
  auto note = [this](std::string problem) { Note(std::move(problem)); };
  if (!option.flag.empty() && !IsWellFormed(option.flag.substr(2), ".-")) {
    note(absl::StrCat("malformed flag name \"", option.flag, "\""));
  }
  if (!option.flag.empty() &&
      (option.value.type == OptionType::kIntegerList ||
       option.value.type == OptionType::kTextList || option.value.type == OptionType::kMap)) {
    note(absl::StrCat(option.flag, ": lists and mappings are YAML keys only"));
  }
  for (const std::string& name : {option.flag, option.negated_flag, option.KeyName()}) {
    if (name.empty()) continue;
    if (names_.contains(name)) note(absl::StrCat("\"", name, "\" is declared twice"));
  }
  option.default_text = option.value.text ? option.value.text() : "";
  options_.push_back(std::make_unique<Option>(std::move(option)));
  Option* added = options_.back().get();
  for (const std::string& name : {added->flag, added->negated_flag, added->KeyName()}) {
    if (!name.empty()) names_.emplace(name, added);
  }
  return *added;
}

Option& OptionDeclarer::Declare(absl::string_view name, absl::string_view dotted, OptionValue value,
                                absl::string_view help) {
  Option option;
  if (!name.empty()) {
    option.flag = absl::StrCat(flag_prefix_, name);
    if (value.type == OptionType::kSwitch || value.type == OptionType::kToggle) {
      option.negated_flag = absl::StrCat("--no-", option.flag.substr(2));
    }
  }
  if (!dotted.empty()) {
    option.key = key_prefix_;
    for (absl::string_view segment : absl::StrSplit(dotted, '.')) {
      if (!IsWellFormed(segment, "_")) set_->Note(absl::StrCat("malformed key \"", dotted, "\""));
      option.key.emplace_back(segment);
    }
  }
  option.help = std::string(help);
  option.value = std::move(value);
  return set_->Add(std::move(option));
}

Option& OptionDeclarer::Flag(absl::string_view name, OptionValue value, absl::string_view help) {
  return Declare(name, "", std::move(value), help);
}

Option& OptionDeclarer::Key(absl::string_view dotted, OptionValue value, absl::string_view help) {
  return Declare("", dotted, std::move(value), help);
}

Option& OptionDeclarer::FlagAndKey(absl::string_view name, absl::string_view dotted,
                                   OptionValue value, absl::string_view help) {
  return Declare(name, dotted, std::move(value), help);
}

OptionDeclarer OptionDeclarer::Under(absl::string_view flag_prefix,
                                     absl::string_view dotted_key) const {
  OptionDeclarer under = *this;
  absl::StrAppend(&under.flag_prefix_, flag_prefix);
  for (absl::string_view segment : absl::StrSplit(dotted_key, '.', absl::SkipEmpty())) {
    if (!IsWellFormed(segment, "_")) set_->Note(absl::StrCat("malformed key \"", dotted_key, "\""));
    under.key_prefix_.emplace_back(segment);
  }
  return under;
}

OptionDeclarer OptionDeclarer::UnderKeySegment(std::string segment) const {
  OptionDeclarer under = *this;
  under.key_prefix_.push_back(std::move(segment));
  return under;
}

OptionValue TextValue(std::string& field) {
  OptionValue value;
  value.text = [&field] { return field; };
  value.parse = [&field](absl::string_view text) {
    field = std::string(text);
    return absl::OkStatus();
  };
  return value;
}

OptionValue SwitchValue(bool& field) {
  OptionValue value;
  value.type = OptionType::kSwitch;
  value.text = [&field] { return std::string(field ? "on" : "off"); };
  value.set = [&field](bool on) { field = on; };
  return value;
}

OptionValue DurationValue(absl::Duration& field, bool zero_allowed) {
  OptionValue value;
  value.type = OptionType::kDuration;
  value.zero_allowed = zero_allowed;
  value.text = [&field] { return absl::FormatDuration(field); };
  value.parse = [&field, zero_allowed](absl::string_view text) {
    if (zero_allowed && text == "0") {
      field = absl::ZeroDuration();
      return absl::OkStatus();
    }
    absl::StatusOr<absl::Duration> parsed = ParsePositiveDuration(text);
    if (!parsed.ok()) return parsed.status();
    field = *parsed;
    return absl::OkStatus();
  };
  return value;
}

OptionValue ByteSizeValue(uint64_t& field) {
  OptionValue value;
  value.type = OptionType::kByteSize;
  value.text = [&field] { return FormatByteSize(field); };
  value.parse = [&field](absl::string_view text) {
    absl::StatusOr<uint64_t> parsed = ParseByteSize(text);
    if (!parsed.ok()) return parsed.status();
    field = *parsed;
    return absl::OkStatus();
  };
  return value;
}

OptionValue NumberValue(std::optional<double>& field) {
  OptionValue value;
  value.type = OptionType::kNumber;
  value.text = [&field] { return field.has_value() ? absl::StrCat(*field) : std::string(); };
  value.parse = [&field](absl::string_view text) {
    double number = 0;
    if (!absl::SimpleAtod(text, &number) || std::isnan(number)) {
      return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" is not a number"));
    }
    field = number;
    return absl::OkStatus();
  };
  return value;
}

OptionValue IntegerListValue(std::vector<uint64_t>& field) {
  OptionValue value;
  value.type = OptionType::kIntegerList;
  value.text = [&field] { return absl::StrJoin(field, ", "); };
  value.clear = [&field] { field.clear(); };
  value.parse = [&field](absl::string_view text) {
    uint64_t number = 0;
    if (text.empty() || !absl::ascii_isdigit(text.front()) || !absl::SimpleAtoi(text, &number)) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", text, "\" is not a non-negative integer"));
    }
    field.push_back(number);
    return absl::OkStatus();
  };
  return value;
}

OptionValue TextListValue(std::vector<std::string>& field) {
  OptionValue value;
  value.type = OptionType::kTextList;
  value.text = [&field] { return absl::StrJoin(field, ", "); };
  value.clear = [&field] { field.clear(); };
  value.parse = [&field](absl::string_view text) {
    field.emplace_back(text);
    return absl::OkStatus();
  };
  return value;
}

OptionValue ChoiceValue(std::string& field, std::vector<std::string> choices) {
  OptionValue value;
  value.type = OptionType::kChoice;
  value.choices = choices;
  value.text = [&field] { return field; };
  value.parse = [&field, choices](absl::string_view text) {
    for (const std::string& choice : choices) {
      if (choice == text) {
        field = choice;
        return absl::OkStatus();
      }
    }
    return absl::InvalidArgumentError(
        absl::StrCat("\"", text, "\" is not one of ", absl::StrJoin(choices, ", ")));
  };
  return value;
}

OptionValue ValueOf(std::string& field) { return TextValue(field); }
OptionValue ValueOf(bool& field) { return SwitchValue(field); }
OptionValue ValueOf(absl::Duration& field) { return DurationValue(field); }
OptionValue ValueOf(std::optional<double>& field) { return NumberValue(field); }
OptionValue ValueOf(std::vector<uint64_t>& field) { return IntegerListValue(field); }
OptionValue ValueOf(std::vector<std::string>& field) { return TextListValue(field); }

absl::Status AtLeast(absl::Duration value, absl::Duration minimum, absl::string_view why) {
  if (value >= minimum) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("must be at least ", absl::FormatDuration(minimum), " (", why, ")"));
}

std::string FormatByteSize(uint64_t bytes) {
  // Largest first, binary before decimal at each size.
  static constexpr std::pair<const char*, uint64_t> kUnits[] = {
      {"GiB", 1ULL << 30},    {"GB", 1000ULL * 1000 * 1000}, {"MiB", 1ULL << 20},
      {"MB", 1000ULL * 1000}, {"KiB", 1ULL << 10},           {"KB", 1000ULL}};
  if (bytes == 0) return "0";
  for (const auto& [suffix, factor] : kUnits) {
    if (bytes % factor == 0) return absl::StrCat(bytes / factor, suffix);
  }
  return absl::StrCat(bytes);
}

}  // namespace devscope
