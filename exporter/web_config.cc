#include "exporter/web_config.h"

#include <crypt.h>

#include <cstring>
#include <memory>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "yaml-cpp/yaml.h"

namespace devscope {
namespace {

bool IsBcrypt(const std::string& hash) {
  return hash.size() == 60 && (absl::StartsWith(hash, "$2a$") || absl::StartsWith(hash, "$2b$") ||
                               absl::StartsWith(hash, "$2y$"));
}

}  // namespace

bool WebConfig::Authorized(absl::string_view header) const {
  if (!absl::ConsumePrefix(&header, "Basic ")) return false;
  std::string decoded;
  if (!absl::Base64Unescape(header, &decoded)) return false;
  const size_t colon = decoded.find(':');
  if (colon == std::string::npos) return false;
  auto user = basic_auth_users.find(decoded.substr(0, colon));
  if (user == basic_auth_users.end()) return false;
  const std::string password = decoded.substr(colon + 1);
  // crypt_r's state is large; keep it off the (CivetWeb worker) stack.
  auto data = std::make_unique<crypt_data>();
  std::memset(data.get(), 0, sizeof(crypt_data));
  const char* hashed = crypt_r(password.c_str(), user->second.c_str(), data.get());
  return hashed != nullptr && user->second == hashed;
}

absl::StatusOr<WebConfig> LoadWebConfig(const std::string& path) {
  auto text = ReadSmallFile(path, 1 << 20);
  if (!text.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--web.config.file: cannot read ", path, ": ", text.status().message()));
  }
  WebConfig config;
  try {
    const YAML::Node root = YAML::Load(*text);
    if (root.IsNull()) return config;
    if (!root.IsMap()) return absl::InvalidArgumentError(absl::StrCat(path, ":1: not a mapping"));
    for (const auto& entry : root) {
      const std::string key = entry.first.as<std::string>();
      const int line = entry.first.Mark().line + 1;
      if (key == "basic_auth_users") {
        for (const auto& user : entry.second) {
          const std::string hash = user.second.as<std::string>();
          if (!IsBcrypt(hash)) {
            return absl::InvalidArgumentError(
                absl::StrCat(path, ":", user.second.Mark().line + 1, ": the password of \"",
                             user.first.as<std::string>(), "\" is not a bcrypt hash"));
          }
          config.basic_auth_users[user.first.as<std::string>()] = hash;
        }
      } else if (key == "tls_server_config" || key == "http_server_config") {
        // devscope does not offer TLS: refuse rather than serve plain HTTP to someone who asked.
        return absl::InvalidArgumentError(absl::StrCat(
            path, ":", line, ": ", key,
            " is not supported yet (terminate TLS in front of devscope, e.g. kube-rbac-proxy)"));
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ":", line, ": unknown key \"", key, "\""));
      }
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ":", e.mark.line + 1, ": ", e.msg));
  }
  return config;
}

}  // namespace devscope
