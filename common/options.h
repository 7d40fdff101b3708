// Options, declared once. Each module owns its options struct and ONE function,
//
//   void DeclareOptions(OptionDeclarer& d, PollerOptions& o) {
//     d.Flag("pod-resources.interval", o.interval, "How often List is polled")
//         .Group("Kubelet")
//         .Check([&o] { return AtLeast(o.interval, absl::Milliseconds(100), "..."); });
//   }
//
// that names every option once: its flag and/or its YAML key, its help, its default (the field's
// value when declared) and how its text is read and checked. From the declarations come the command
// line and --help (cmd/flags.cc, CLI11), the --config.file loader (common/options_yaml.h), the
// tables of docs/interface.md and the JSON schema of the YAML keys (common/options_docs.h).
//
// An OptionSet binds references to the fields it was declared over: the structs must stay where
// they are while the set is used (declare, read every source, run the checks, then copy them).
#ifndef DEVSCOPE_COMMON_OPTIONS_H_
#define DEVSCOPE_COMMON_OPTIONS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace devscope {

class OptionDeclarer;

// What an option holds: how it is read from YAML, shown in the docs and typed in the schema.
enum class OptionType {
  kText,         // any string
  kSwitch,       // a bool: --NAME / --no-NAME; YAML true or false
  kToggle,       // on (--NAME), off (--no-NAME) or auto (neither): --collector.NAME
  kDuration,     // 1s, 500ms, 2m30s (Go's syntax, as absl::ParseDuration reads it)
  kByteSize,     // 64MiB, 16MB, 1048576
  kNumber,       // a decimal number
  kIntegerList,  // a YAML list of non-negative integers (a key only, never a flag)
  kTextList,     // a YAML list of strings (a key only, never a flag)
  kChoice,       // one of OptionValue::choices
  kMap,          // a YAML mapping of names to sections, each entry's options declared per entry
                 // (a key only)
};

// How an option's value is read and shown, bound to one field; made by the *Value functions below.
struct OptionValue {
  OptionType type = OptionType::kText;
  std::vector<std::string> choices;  // kChoice
  bool zero_allowed = false;         // kDuration: "0" (meaning "never") is accepted
  // The field's value as text (at declaration: the default the docs show).
  std::function<std::string()> text;
  // Sets the field from a flag's value or a YAML scalar (a list: appends one item).
  std::function<absl::Status(absl::string_view)> parse;
  // kSwitch, kToggle: sets the field from the flag (true) or its --no- form (false).
  std::function<void(bool)> set;
  // A list: empties it before a YAML list replaces it.
  std::function<void()> clear;
  // kMap: adds the entry `name` and declares its options with `entry` (already under its key).
  std::function<void(const std::string& name, OptionDeclarer& entry)> add_entry;
  // kMap: declares one entry's options on a scratch entry, for the docs and the schema.
  std::function<void(OptionDeclarer& entry)> describe_entry;
  std::string entry_placeholder;  // kMap: how the docs name an entry, e.g. RESOURCE
};

// Where an option's current value came from.
enum class OptionSource { kDefault, kFlag, kFile };

struct Option {
  std::string flag;              // "--pod-resources.interval"; empty: YAML only
  std::string negated_flag;      // "--no-device-plugin": kSwitch and kToggle flags
  std::vector<std::string> key;  // {"collectors", "nvml", "library"}; empty: flag only
  std::string help;              // one line, for --help and the docs
  std::string doc_note;          // markdown added after the help in the docs only
  std::string group;             // --help section
  std::string default_text;      // value.text() when declared
  OptionValue value;
  // Run once every source is read; a failure's message is prefixed with Name().
  std::vector<std::function<absl::Status(const Option&)>> checks;
  OptionSource source = OptionSource::kDefault;

  std::string KeyName() const;  // "collectors.nvml.library"
  std::string Name() const;     // the flag, else the key: how messages name it

  Option& Group(std::string name);
  Option& DocNote(std::string markdown);
  // A check of the final value, whichever source set it (the file may set what a flag did not).
  Option& Check(std::function<absl::Status()> check);
  // When the value was given (not the default, which may be absent: the kubelet may start after
  // devscope), it must be an existing directory; with `applies`, only while that says so.
  Option& MustBeDirectory(std::function<bool()> applies = nullptr);
  // When given, the directory the path is in must exist (a socket that may not exist yet).
  Option& ParentMustBeDirectory();
};

// Every declared option, in declaration order.
class OptionSet {
 public:
  OptionSet() = default;
  OptionSet(const OptionSet&) = delete;
  OptionSet& operator=(const OptionSet&) = delete;

  const std::vector<std::unique_ptr<Option>>& options() const { return options_; }
  // The option with this flag (or --no- form); null when none.
  Option* FindFlag(absl::string_view flag) const;
  // The first mistake in the declarations (a name declared twice, a malformed name): a bug that
  // the tests catch, never a user's error.
  const absl::Status& status() const { return status_; }
  // Runs every option's checks in declaration order; the first failure, as "NAME: problem".
  absl::Status RunChecks() const;
  // Keeps a scratch struct alive as long as the options bound to it (docs of map entries).
  void Keep(std::shared_ptr<const void> scratch) { kept_.push_back(std::move(scratch)); }

 private:
  friend class OptionDeclarer;
  Option& Add(Option option);
  void Note(std::string problem);  // keeps the first declaration mistake

  std::vector<std::unique_ptr<Option>> options_;
  std::map<std::string, const Option*> names_;  // every flag, --no- flag and dotted key
  absl::Status status_;
  std::vector<std::shared_ptr<const void>> kept_;
};

// Declares options into a set, with names relative to a flag prefix and a YAML key prefix.
class OptionDeclarer {
 public:
  // At the top: flag names are "--" + name, keys are as given.
  explicit OptionDeclarer(OptionSet& set) : set_(&set), flag_prefix_("--") {}

  // A command-line flag: "web.listen-address" declares --web.listen-address. A kSwitch or kToggle
  // flag also gets its --no- form.
  Option& Flag(absl::string_view name, OptionValue value, absl::string_view help);
  // A YAML key of --config.file, dotted: "collectors.interval".
  Option& Key(absl::string_view dotted, OptionValue value, absl::string_view help);
  // Both: the flag, given on the command line, wins over the file's key.
  Option& FlagAndKey(absl::string_view name, absl::string_view dotted, OptionValue value,
                     absl::string_view help);
  // The same for the common field types (std::string, bool, absl::Duration, std::optional<double>,
  // std::vector<uint64_t>, std::vector<std::string>); other types need an explicit *Value().
  template <typename T>
  Option& Flag(absl::string_view name, T& field, absl::string_view help);
  template <typename T>
  Option& Key(absl::string_view dotted, T& field, absl::string_view help);

  // A declarer whose names continue these prefixes: Under("collector.nvml.", "collectors.nvml").
  OptionDeclarer Under(absl::string_view flag_prefix, absl::string_view dotted_key) const;
  // A declarer one key below, `segment` taken whole (a map entry's name may hold dots).
  OptionDeclarer UnderKeySegment(std::string segment) const;

  OptionSet& set() const { return *set_; }

 private:
  Option& Declare(absl::string_view name, absl::string_view dotted, OptionValue value,
                  absl::string_view help);

  OptionSet* set_;
  std::string flag_prefix_;
  std::vector<std::string> key_prefix_;
};

// The binders: each returns how to read and show one field.
OptionValue TextValue(std::string& field);
OptionValue SwitchValue(bool& field);
// `zero_allowed`: "0" is accepted too (the caller gives zero its meaning, e.g. "never").
OptionValue DurationValue(absl::Duration& field, bool zero_allowed = false);
OptionValue ByteSizeValue(uint64_t& field);
OptionValue NumberValue(std::optional<double>& field);
OptionValue IntegerListValue(std::vector<uint64_t>& field);
OptionValue TextListValue(std::vector<std::string>& field);
OptionValue ChoiceValue(std::string& field, std::vector<std::string> choices);

// One of named values of an enum: ChoiceValue(o.policy, {{"pack", kPack}, {"spread", kSpread}}).
template <typename Enum>
OptionValue ChoiceValue(Enum& field, std::vector<std::pair<std::string, Enum>> choices) {
  OptionValue value;
  value.type = OptionType::kChoice;
  for (const auto& choice : choices) value.choices.push_back(choice.first);
  value.text = [&field, choices] {
    for (const auto& [name, e] : choices) {
      if (e == field) return name;
    }
    return std::string();
  };
  value.parse = [&field, choices](absl::string_view text) {
    for (const auto& [name, e] : choices) {
      if (name == text) {
        field = e;
        return absl::OkStatus();
      }
    }
    std::string names;
    for (const auto& choice : choices)
      absl::StrAppend(&names, names.empty() ? "" : ", ", choice.first);
    return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" is not one of ", names));
  };
  return value;
}

// A YAML mapping NAME -> section, each entry an `Entry` whose options `declare` names (relative to
// the entry). `placeholder` names an entry in the docs.
template <typename Entry>
OptionValue MapValue(std::map<std::string, Entry>& field, void (*declare)(OptionDeclarer&, Entry&),
                     std::string placeholder) {
  OptionValue value;
  value.type = OptionType::kMap;
  value.entry_placeholder = std::move(placeholder);
  value.text = [] { return std::string(); };
  value.add_entry = [&field, declare](const std::string& name, OptionDeclarer& entry) {
    Entry& added = field[name];
    added = Entry{};
    declare(entry, added);
  };
  value.describe_entry = [declare](OptionDeclarer& entry) {
    auto scratch = std::make_shared<Entry>();
    declare(entry, *scratch);
    entry.set().Keep(scratch);
  };
  return value;
}

OptionValue ValueOf(std::string& field);
OptionValue ValueOf(bool& field);
OptionValue ValueOf(absl::Duration& field);
OptionValue ValueOf(std::optional<double>& field);
OptionValue ValueOf(std::vector<uint64_t>& field);
OptionValue ValueOf(std::vector<std::string>& field);

template <typename T>
Option& OptionDeclarer::Flag(absl::string_view name, T& field, absl::string_view help) {
  return Flag(name, ValueOf(field), help);
}
template <typename T>
Option& OptionDeclarer::Key(absl::string_view dotted, T& field, absl::string_view help) {
  return Key(dotted, ValueOf(field), help);
}

// For checks: OK when `value` >= `minimum`, else "must be at least MINIMUM (why)".
absl::Status AtLeast(absl::Duration value, absl::Duration minimum, absl::string_view why);

// "64MiB", "16MB"-style text of a byte count (the largest unit that divides it).
std::string FormatByteSize(uint64_t bytes);

}  // namespace devscope

#endif  // DEVSCOPE_COMMON_OPTIONS_H_
