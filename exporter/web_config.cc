#include "exporter/web_config.h"

#include <openssl/ssl.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/files.h"
#include "yaml-cpp/yaml.h"

namespace devscope {
namespace {

bool IsBcrypt(const std::string& hash) {
  return hash.size() == 60 && (absl::StartsWith(hash, "$2a$") || absl::StartsWith(hash, "$2b$") ||
                               absl::StartsWith(hash, "$2y$"));
}

// A problem at a node of the file: "PATH:LINE: what".
absl::Status At(const std::string& path, const YAML::Node& node, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ":", node.Mark().line + 1, ": ", what));
}

// The toolkit resolves file names against the config file's directory.
std::string Resolve(const std::string& config_path, const std::string& name) {
  if (name.empty() || name.front() == '/') return name;
  return (std::filesystem::path(config_path).parent_path() / name).lexically_normal().string();
}

std::optional<int> TlsVersion(const std::string& name) {
  if (name == "TLS10") return 0x0301;
  if (name == "TLS11") return 0x0302;
  if (name == "TLS12") return 0x0303;
  if (name == "TLS13") return 0x0304;
  return std::nullopt;
}

// Go's names for the exporter toolkit's curve_preferences, as OpenSSL groups.
std::optional<std::string> GroupName(const std::string& go_name) {
  if (go_name == "CurveP256") return "P-256";
  if (go_name == "CurveP384") return "P-384";
  if (go_name == "CurveP521") return "P-521";
  if (go_name == "X25519") return "X25519";
  return std::nullopt;
}

// Go names cipher suites by their IANA names, which OpenSSL translates; Go also accepts the
// pre-RFC ChaCha20 names without the _SHA256 suffix.
std::optional<std::string> OpenSslCipherName(const std::string& go_name) {
  for (const std::string& name : {go_name, go_name + "_SHA256"}) {
    const char* openssl = OPENSSL_cipher_name(name.c_str());
    if (openssl != nullptr && std::strcmp(openssl, "(NONE)") != 0) return std::string(openssl);
  }
  return std::nullopt;
}

// cipher_suites as OpenSSL's cipher list.
absl::StatusOr<std::string> ParseCipherSuites(const std::string& path, const YAML::Node& value) {
  std::vector<std::string> names;
  for (const auto& suite : value) {
    const std::string name = suite.as<std::string>();
    if (absl::StartsWith(name, "TLS_AES_") || absl::StartsWith(name, "TLS_CHACHA20_")) {
      return At(path, suite, "TLS 1.3 suites cannot be chosen (as in the exporter toolkit)");
    }
    auto openssl = OpenSslCipherName(name);
    if (!openssl) return At(path, suite, absl::StrCat("unknown cipher suite ", name));
    names.push_back(*openssl);
  }
  return absl::StrJoin(names, ":");
}

// curve_preferences as OpenSSL's group list.
absl::StatusOr<std::string> ParseCurves(const std::string& path, const YAML::Node& value) {
  std::vector<std::string> groups;
  for (const auto& curve : value) {
    auto group = GroupName(curve.as<std::string>());
    if (!group) {
      return At(path, curve,
                "curve_preferences: not one of CurveP256, CurveP384, "
                "CurveP521, X25519");
    }
    groups.push_back(*group);
  }
  return absl::StrJoin(groups, ":");
}

// Sets tls.client_auth from client_auth_type (given or not) and checks that it and client_ca_file
// agree.
absl::Status SetClientAuth(const std::string& path, const YAML::Node& node,
                           std::optional<std::string> client_auth, TlsServerConfig& tls) {
  using ClientAuth = TlsServerConfig::ClientAuth;
  // As the toolkit: a client CA without a type means every client must present a certificate
  // signed by it.
  if (!client_auth)
    client_auth = tls.client_ca_file.empty() ? "NoClientCert" : "RequireAndVerifyClientCert";
  const std::map<std::string, ClientAuth> types = {
      {"NoClientCert", ClientAuth::kNone},
      {"RequestClientCert", ClientAuth::kRequest},
      {"RequireAnyClientCert", ClientAuth::kRequireAny},
      {"VerifyClientCertIfGiven", ClientAuth::kVerifyIfGiven},
      {"RequireAndVerifyClientCert", ClientAuth::kRequireAndVerify}};
  auto type = types.find(*client_auth);
  if (type == types.end()) {
    return At(path, node,
              absl::StrCat("tls_server_config: unknown client_auth_type ", *client_auth));
  }
  tls.client_auth = type->second;
  const bool verifies = tls.client_auth == ClientAuth::kVerifyIfGiven ||
                        tls.client_auth == ClientAuth::kRequireAndVerify;
  if (verifies && tls.client_ca_file.empty()) {
    return At(path, node,
              absl::StrCat("tls_server_config: client_auth_type ", *client_auth,
                           " needs client_ca_file"));
  }
  if (!verifies && !tls.client_ca_file.empty()) {
    return At(path, node,
              absl::StrCat("tls_server_config: client_ca_file is given but ", *client_auth,
                           " does not verify client certificates"));
  }
  return absl::OkStatus();
}

absl::StatusOr<TlsServerConfig> ParseTls(const std::string& path, const YAML::Node& node) {
  if (!node.IsMap()) return At(path, node, "tls_server_config is not a mapping");
  TlsServerConfig tls;
  std::optional<std::string> client_auth;
  for (const auto& entry : node) {
    const std::string key = entry.first.as<std::string>();
    const YAML::Node& value = entry.second;
    if (key == "cert_file") {
      tls.cert_file = Resolve(path, value.as<std::string>());
    } else if (key == "key_file") {
      tls.key_file = Resolve(path, value.as<std::string>());
    } else if (key == "client_ca_file") {
      tls.client_ca_file = Resolve(path, value.as<std::string>());
    } else if (key == "client_auth_type") {
      client_auth = value.as<std::string>();
    } else if (key == "min_version" || key == "max_version") {
      auto version = TlsVersion(value.as<std::string>());
      if (!version) return At(path, value, key + " is not one of TLS10, TLS11, TLS12, TLS13");
      (key == "min_version" ? tls.min_version : tls.max_version) = *version;
    } else if (key == "cipher_suites") {
      auto list = ParseCipherSuites(path, value);
      if (!list.ok()) return list.status();
      tls.cipher_list = *std::move(list);
    } else if (key == "curve_preferences") {
      auto groups = ParseCurves(path, value);
      if (!groups.ok()) return groups.status();
      tls.groups = *std::move(groups);
    } else if (key == "prefer_server_cipher_suites") {
      tls.prefer_server_cipher_suites = value.as<bool>();
    } else if (key == "cert" || key == "key" || key == "client_allowed_sans") {
      return At(path, entry.first,
                absl::StrCat("tls_server_config.", key,
                             " is not supported (use cert_file and key_file; "
                             "client certificates are checked against "
                             "client_ca_file only)"));
    } else {
      return At(path, entry.first, absl::StrCat("unknown key \"tls_server_config.", key, "\""));
    }
  }
  if (tls.cert_file.empty() || tls.key_file.empty()) {
    return At(path, node, "tls_server_config needs both cert_file and key_file");
  }
  if (tls.max_version != 0 && tls.max_version < tls.min_version) {
    return At(path, node, "tls_server_config: max_version is below min_version");
  }
  if (absl::Status status = SetClientAuth(path, node, client_auth, tls); !status.ok()) {
    return status;
  }
  return tls;
}

absl::Status ParseHttpServerConfig(const std::string& path, const YAML::Node& node,
                                   WebConfig& config) {
  if (!node.IsMap()) return At(path, node, "http_server_config is not a mapping");
  // The headers the exporter toolkit lets a config set.
  static const std::set<std::string> kAllowedHeaders = {
      "Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "X-XSS-Protection",
      "Strict-Transport-Security"};
  for (const auto& entry : node) {
    const std::string key = entry.first.as<std::string>();
    if (key == "http2") {
      // devscope speaks HTTP/1.1 (its transport has no HTTP/2); Prometheus
      // scrapes over either, so the setting changes nothing and is accepted.
      entry.second.as<bool>();
    } else if (key == "headers") {
      for (const auto& header : entry.second) {
        const std::string name = header.first.as<std::string>();
        const std::string value = header.second.as<std::string>();
        if (!kAllowedHeaders.contains(name)) {
          return At(path, header.first,
                    absl::StrCat("http_server_config.headers: ", name, " cannot be set"));
        }
        if (value.find_first_of("\r\n") != std::string::npos) {
          return At(path, header.second, "a header value may not contain a line break");
        }
        config.response_headers[name] = value;
      }
    } else {
      return At(path, entry.first, absl::StrCat("unknown key \"http_server_config.", key, "\""));
    }
  }
  return absl::OkStatus();
}

}  // namespace

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
      } else if (key == "tls_server_config") {
        auto tls = ParseTls(path, entry.second);
        if (!tls.ok()) return tls.status();
        config.tls = *std::move(tls);
      } else if (key == "http_server_config") {
        absl::Status status = ParseHttpServerConfig(path, entry.second, config);
        if (!status.ok()) return status;
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
