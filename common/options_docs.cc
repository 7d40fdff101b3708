#include "common/options_docs.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "nlohmann/json.hpp"

namespace devscope {
namespace {

using Json = nlohmann::ordered_json;

// absl::ParseDuration's units; a positive duration is one or more NUMBER UNIT parts.
constexpr const char* kDurationPattern = R"(^(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|ms|s|m|h))+$)";
constexpr const char* kZeroDurationPattern = R"(^((0+(\.0*)?|\.0+)(ns|us|ms|s|m|h))+$)";
constexpr const char* kByteSizePattern = R"(^[0-9]+(B|KB|MB|GB|KiB|MiB|GiB)?$)";

std::string Cell(absl::string_view text) { return absl::StrReplaceAll(text, {{"|", "\\|"}}); }

std::string Code(absl::string_view text) { return absl::StrCat("`", text, "`"); }

std::string Meaning(const Option& option) {
  if (option.doc_note.empty()) return Cell(option.help);
  return Cell(absl::StrCat(option.help, "; ", option.doc_note));
}

// A switch's default reads "on"/"off" beside a flag and true/false beside a YAML key.
std::string DefaultCell(const Option& option, bool for_key) {
  if (option.value.type == OptionType::kToggle) return "auto";
  if (option.default_text.empty()) return "(none)";
  if (option.value.type == OptionType::kSwitch) {
    if (!for_key) return option.default_text;
    return Code(option.default_text == "on" ? "true" : "false");
  }
  if (option.value.type == OptionType::kIntegerList || option.value.type == OptionType::kTextList) {
    return Code(absl::StrCat("[", option.default_text, "]"));
  }
  return Code(option.default_text);
}

std::string ValueCell(const OptionValue& value) {
  switch (value.type) {
    case OptionType::kText:
      return "text";
    case OptionType::kSwitch:
    case OptionType::kToggle:
      return "true or false";
    case OptionType::kDuration:
      return value.zero_allowed ? "duration, or 0" : "duration";
    case OptionType::kByteSize:
      return "size";
    case OptionType::kNumber:
      return "number";
    case OptionType::kIntegerList:
      return "list of integers";
    case OptionType::kTextList:
      return "list of text";
    case OptionType::kChoice:
      return absl::StrJoin(value.choices, ", ", [](std::string* out, const std::string& choice) {
        absl::StrAppend(out, Code(choice));
      });
    case OptionType::kMap:
      return absl::StrCat("mapping of ", value.entry_placeholder, " to the keys below");
  }
  return "";
}

void AppendKeyRows(const OptionSet& options, std::string& out) {
  for (const auto& option : options.options()) {
    if (option->key.empty()) continue;
    absl::StrAppend(&out, "| ", Code(option->KeyName()), " | ", ValueCell(option->value), " | ",
                    DefaultCell(*option, /*for_key=*/true), " | ", Meaning(*option), " |\n");
    if (option->value.type != OptionType::kMap) continue;
    OptionSet entry;
    OptionDeclarer declarer(entry);
    for (const std::string& segment : option->key) declarer = declarer.UnderKeySegment(segment);
    OptionDeclarer under = declarer.UnderKeySegment(option->value.entry_placeholder);
    option->value.describe_entry(under);
    AppendKeyRows(entry, out);
  }
}

Json ValueSchema(const Option& option);

// The schema of a section holding `options`' keys, each taken from `depth` segments on.
Json SectionSchema(const OptionSet& options, size_t depth) {
  Json section = {{"type", {"object", "null"}}, {"additionalProperties", false}};
  Json& properties = section["properties"] = Json::object();
  for (const auto& option : options.options()) {
    if (option->key.size() <= depth) continue;
    Json* node = &properties;
    for (size_t i = depth; i + 1 < option->key.size(); ++i) {
      Json& child = (*node)[option->key[i]];
      if (child.is_null()) {
        child = {{"type", {"object", "null"}},
                 {"additionalProperties", false},
                 {"properties", Json::object()}};
      }
      node = &child["properties"];
    }
    (*node)[option->key.back()] = ValueSchema(*option);
  }
  return section;
}

Json ValueSchema(const Option& option) {
  Json schema;
  const OptionValue& value = option.value;
  switch (value.type) {
    case OptionType::kText:
      schema = {{"type", "string"}};
      break;
    case OptionType::kSwitch:
    case OptionType::kToggle:
      schema = {{"type", "boolean"}};
      break;
    case OptionType::kDuration:
      if (value.zero_allowed) {
        schema = {
            {"anyOf", {{{"type", "string"}, {"pattern", kDurationPattern}}, {{"enum", {0, "0"}}}}}};
      } else {
        schema = {{"type", "string"}, {"pattern", kDurationPattern}};
      }
      schema["not"] = {{"type", "string"}, {"pattern", kZeroDurationPattern}};
      break;
    case OptionType::kByteSize:
      schema = {{"type", {"string", "integer"}}, {"pattern", kByteSizePattern}, {"minimum", 1}};
      break;
    case OptionType::kNumber:
      schema = {{"type", "number"}};
      break;
    case OptionType::kIntegerList:
      schema = {{"type", "array"}, {"items", {{"type", "integer"}, {"minimum", 0}}}};
      break;
    case OptionType::kTextList:
      schema = {{"type", "array"}, {"items", {{"type", "string"}}}};
      break;
    case OptionType::kChoice:
      schema = {{"type", "string"}, {"enum", value.choices}};
      break;
    case OptionType::kMap: {
      OptionSet entry;
      OptionDeclarer declarer(entry);
      value.describe_entry(declarer);
      schema = {{"type", {"object", "null"}}, {"additionalProperties", SectionSchema(entry, 0)}};
      break;
    }
  }
  schema["description"] = option.help;
  return schema;
}

}  // namespace

std::string FlagTableMarkdown(const OptionSet& options) {
  std::string out = "| flag | default | meaning |\n|---|---|---|\n";
  for (const auto& option : options.options()) {
    if (option->flag.empty()) continue;
    std::string flags = Code(option->flag);
    if (!option->negated_flag.empty()) absl::StrAppend(&flags, ", ", Code(option->negated_flag));
    absl::StrAppend(&out, "| ", flags, " | ", DefaultCell(*option, /*for_key=*/false), " | ",
                    Meaning(*option), " |\n");
  }
  return out;
}

std::string KeyTableMarkdown(const OptionSet& options) {
  std::string out = "| key | value | default | meaning |\n|---|---|---|---|\n";
  AppendKeyRows(options, out);
  return out;
}

std::string ConfigJsonSchema(const OptionSet& options) {
  Json schema = {{"$schema", "http://json-schema.org/draft-07/schema#"},
                 {"title", "devscope --config.file"}};
  schema.update(SectionSchema(options, 0));
  return schema.dump(2) + "\n";
}

}  // namespace devscope
