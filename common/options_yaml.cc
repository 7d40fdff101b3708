#include "common/options_yaml.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/files.h"
#include "yaml-cpp/yaml.h"

namespace devscope {
namespace {

using KeyPath = std::vector<std::string>;

class Loader {
 public:
  Loader(std::string file, OptionSet& options) : file_(std::move(file)), options_(options) {}

  // Reads the section at `path` (empty: the whole file) from `node`.
  absl::Status Section(const YAML::Node& node, const KeyPath& path) {
    if (node.IsNull()) return absl::OkStatus();
    if (!node.IsMap()) return At(node, absl::StrCat(Where(path), " must be a mapping"));
    const std::map<std::string, Option*> known = KnownBelow(path);
    for (const auto& entry : node) {
      const std::string key = entry.first.as<std::string>();
      const auto it = known.find(key);
      if (it == known.end()) {
        std::vector<std::string> names;
        for (const auto& [name, option] : known) names.push_back(name);
        return At(entry.first, absl::StrCat("unknown key \"", key, "\" in ", Where(path),
                                            " (known: ", absl::StrJoin(names, ", "), ")"));
      }
      KeyPath below = path;
      below.push_back(key);
      const absl::Status status =
          it->second != nullptr ? Value(*it->second, entry.second) : Section(entry.second, below);
      if (!status.ok()) return status;
    }
    return absl::OkStatus();
  }

 private:
  absl::Status At(const YAML::Node& node, absl::string_view problem) const {
    return absl::InvalidArgumentError(
        absl::StrCat(file_, ":", node.Mark().line + 1, ": ", problem));
  }

  static std::string Where(const KeyPath& path) {
    return path.empty() ? "the top level" : absl::StrJoin(path, ".");
  }

  // The keys one level below `path`: an option's own key (its Option) or a section (null).
  std::map<std::string, Option*> KnownBelow(const KeyPath& path) const {
    std::map<std::string, Option*> known;
    for (const auto& option : options_.options()) {
      const KeyPath& key = option->key;
      if (key.size() <= path.size() || !std::equal(path.begin(), path.end(), key.begin())) {
        continue;
      }
      const std::string& next = key[path.size()];
      if (key.size() == path.size() + 1) {
        known[next] = option.get();
      } else {
        known.emplace(next, nullptr);
      }
    }
    return known;
  }

  absl::Status Value(Option& option, const YAML::Node& node) {
    // The command line wins over the file.
    if (option.source == OptionSource::kFlag) return absl::OkStatus();
    const std::string name = option.KeyName();
    absl::Status status;
    switch (option.value.type) {
      case OptionType::kMap:
        status = Entries(option, node);
        break;
      case OptionType::kIntegerList:
      case OptionType::kTextList:
        if (!node.IsSequence()) return At(node, absl::StrCat(name, " must be a list"));
        option.value.clear();
        for (const YAML::Node& item : node) {
          if (!item.IsScalar()) {
            return At(item, absl::StrCat(name, option.value.type == OptionType::kIntegerList
                                                   ? ": items must be numbers"
                                                   : ": items must be single values"));
          }
          status = option.value.parse(item.Scalar());
          if (!status.ok()) return At(item, absl::StrCat(name, ": ", status.message()));
        }
        break;
      case OptionType::kSwitch:
      case OptionType::kToggle: {
        bool on = false;
        if (!node.IsScalar() || !YAML::convert<bool>::decode(node, on)) {
          return At(node, absl::StrCat(name, ": expected true or false"));
        }
        option.value.set(on);
        break;
      }
      default:
        if (!node.IsScalar() && !node.IsNull()) {
          return At(node, absl::StrCat(name, " must be a single value"));
        }
        status = option.value.parse(node.IsNull() ? "" : node.Scalar());
        if (!status.ok()) return At(node, absl::StrCat(name, ": ", status.message()));
    }
    if (!status.ok()) return status;
    option.source = OptionSource::kFile;
    return absl::OkStatus();
  }

  // A map option: each entry is declared, then read as a section of its own.
  absl::Status Entries(const Option& option, const YAML::Node& node) {
    if (node.IsNull()) return absl::OkStatus();
    const std::string name = option.KeyName();
    if (!node.IsMap()) return At(node, absl::StrCat(name, " must be a mapping"));
    std::set<std::string> seen;
    for (const auto& entry : node) {
      const std::string entry_name = entry.first.as<std::string>();
      if (!seen.insert(entry_name).second) {
        return At(entry.first, absl::StrCat(name, ": \"", entry_name, "\" is given twice"));
      }
      OptionDeclarer declarer(options_);
      KeyPath path = option.key;
      path.push_back(entry_name);
      for (const std::string& segment : path) declarer = declarer.UnderKeySegment(segment);
      option.value.add_entry(entry_name, declarer);
      if (absl::Status status = Section(entry.second, path); !status.ok()) return status;
    }
    return absl::OkStatus();
  }

  const std::string file_;
  OptionSet& options_;
};

}  // namespace

absl::Status LoadOptionsFile(const std::string& path, OptionSet& options) {
  absl::StatusOr<std::string> text = ReadSmallFile(path, 1 << 20);
  if (!text.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--config.file: cannot read ", path, ": ", text.status().message()));
  }
  // yaml-cpp reports syntax and conversion problems by throwing; they stop here.
  try {
    return Loader(path, options).Section(YAML::Load(*text), {});
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ":", e.mark.line + 1, ": ", e.msg));
  }
}

}  // namespace devscope
