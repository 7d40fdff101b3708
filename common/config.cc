// The YAML of --config.file. Every key is known: an unknown key is a typo that would otherwise
// silently do nothing, so it is an error naming the file and line.
#include "common/config.h"

#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/files.h"
#include "common/units.h"
#include "yaml-cpp/yaml.h"

namespace devscope {
namespace {

class ConfigError {
 public:
  ConfigError(std::string file) : file_(std::move(file)) {}

  absl::Status At(const YAML::Node& node, absl::string_view problem) const {
    return absl::InvalidArgumentError(
        absl::StrCat(file_, ":", node.Mark().line + 1, ": ", problem));
  }

 private:
  std::string file_;
};

// Checks that `node` is a map (or null: an empty section) with only `allowed` keys.
absl::Status CheckKeys(const ConfigError& error, const YAML::Node& node, absl::string_view where,
                       const std::set<std::string>& allowed) {
  if (node.IsNull()) return absl::OkStatus();
  if (!node.IsMap()) return error.At(node, absl::StrCat(where, " must be a mapping"));
  for (const auto& entry : node) {
    const std::string key = entry.first.as<std::string>();
    if (allowed.count(key) == 0) {
      std::vector<std::string> names(allowed.begin(), allowed.end());
      return error.At(entry.first, absl::StrCat("unknown key \"", key, "\" in ", where,
                                                " (known: ", absl::StrJoin(names, ", "), ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status ReadDuration(const ConfigError& error, const YAML::Node& node, absl::string_view key,
                          absl::Duration& out) {
  if (!node) return absl::OkStatus();
  auto parsed = ParsePositiveDuration(node.as<std::string>());
  if (!parsed.ok()) return error.At(node, absl::StrCat(key, ": ", parsed.status().message()));
  out = *parsed;
  return absl::OkStatus();
}

absl::Status ReadHardware(const ConfigError& error, const YAML::Node& node, absl::string_view name,
                          const std::set<std::string>& allowed, HardwareCollectorConfig& out) {
  if (!node) return absl::OkStatus();
  absl::Status keys = CheckKeys(error, node, absl::StrCat("collectors.", name), allowed);
  if (!keys.ok()) return keys;
  if (node["advertise"]) out.advertise_resource = node["advertise"].as<std::string>();
  return absl::OkStatus();
}

absl::Status Load(const ConfigError& error, const YAML::Node& root, Config& config) {
  absl::Status s =
      CheckKeys(error, root, "the top level", {"collectors", "health", "device_plugin"});
  if (!s.ok()) return s;
  if (root.IsNull()) return absl::OkStatus();

  if (const YAML::Node collectors = root["collectors"]) {
    s = CheckKeys(error, collectors, "collectors",
                  {"interval", "stale_after", "nvml", "drm", "netdev"});
    if (!s.ok()) return s;
    if (!(s = ReadDuration(error, collectors["interval"], "collectors.interval",
                           config.collector_interval))
             .ok()) {
      return s;
    }
    if (!(s = ReadDuration(error, collectors["stale_after"], "collectors.stale_after",
                           config.collector_stale_after))
             .ok()) {
      return s;
    }
    const YAML::Node nvml = collectors["nvml"];
    if (!(s = ReadHardware(
              error, nvml, "nvml",
              {"advertise", "library", "ignored_xids", "xid_recovery", "mig_minors_file"},
              config.nvml))
             .ok()) {
      return s;
    }
    if (nvml && nvml["library"]) config.nvml_library = nvml["library"].as<std::string>();
    if (nvml && nvml["mig_minors_file"]) {
      config.nvml_mig_minors_file = nvml["mig_minors_file"].as<std::string>();
    }
    if (nvml && nvml["ignored_xids"]) {
      if (!nvml["ignored_xids"].IsSequence()) {
        return error.At(nvml["ignored_xids"], "collectors.nvml.ignored_xids must be a list");
      }
      config.nvml_ignored_xids = nvml["ignored_xids"].as<std::vector<uint64_t>>();
    }
    if (nvml && nvml["xid_recovery"]) {
      // 0 is allowed here: never recover while devscope runs.
      if (nvml["xid_recovery"].as<std::string>() == "0") {
        config.nvml_xid_recovery = absl::ZeroDuration();
      } else if (!(s = ReadDuration(error, nvml["xid_recovery"], "collectors.nvml.xid_recovery",
                                    config.nvml_xid_recovery))
                      .ok()) {
        return s;
      }
    }
    if (!(s = ReadHardware(error, collectors["drm"], "drm", {"advertise"}, config.drm)).ok()) {
      return s;
    }
    if (!(s = ReadHardware(error, collectors["netdev"], "netdev", {"advertise"}, config.netdev))
             .ok()) {
      return s;
    }
  }

  if (const YAML::Node health = root["health"]) {
    if (!(s = CheckKeys(error, health, "health", {"max_temperature_celsius"})).ok()) return s;
    if (health["max_temperature_celsius"]) {
      config.max_temperature_celsius = health["max_temperature_celsius"].as<double>();
    }
  }

  if (const YAML::Node plugin = root["device_plugin"]) {
    if (!(s = CheckKeys(error, plugin, "device_plugin", {"plugins_registry_dir", "resources"}))
             .ok()) {
      return s;
    }
    if (plugin["plugins_registry_dir"]) {
      config.plugins_registry_dir = plugin["plugins_registry_dir"].as<std::string>();
    }
    const YAML::Node resources = plugin["resources"];
    if (resources && !resources.IsNull()) {
      if (!resources.IsMap())
        return error.At(resources, "device_plugin.resources must be a mapping");
      for (const auto& entry : resources) {
        const std::string name = entry.first.as<std::string>();
        const std::string where = absl::StrCat("device_plugin.resources.", name);
        if (!(s = CheckKeys(error, entry.second, where,
                            {"allocation_policy", "pre_start_container"}))
                 .ok()) {
          return s;
        }
        PluginResourceConfig settings;
        if (const YAML::Node policy = entry.second["allocation_policy"]) {
          const std::string value = policy.as<std::string>();
          if (value == "pack") {
            settings.allocation_policy = AllocationPolicy::kPack;
          } else if (value == "spread") {
            settings.allocation_policy = AllocationPolicy::kSpread;
          } else {
            return error.At(policy, absl::StrCat(where, ".allocation_policy: \"", value,
                                                 "\" is not pack or spread"));
          }
        }
        if (entry.second["pre_start_container"]) {
          settings.pre_start_container = entry.second["pre_start_container"].as<bool>();
        }
        config.plugin_resources[name] = settings;
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status LoadConfigFile(const std::string& path, Config& config) {
  auto text = ReadSmallFile(path, 1 << 20);
  if (!text.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--config.file: cannot read ", path, ": ", text.status().message()));
  }
  const ConfigError error(path);
  // yaml-cpp reports syntax and conversion problems by throwing; they stop here.
  try {
    const YAML::Node root = YAML::Load(*text);
    return Load(error, root, config);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ":", e.mark.line + 1, ": ", e.msg));
  }
}

}  // namespace devscope
