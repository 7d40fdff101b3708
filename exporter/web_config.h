// --web.config.file: the exporter toolkit's web config. basic_auth_users with bcrypt hashes
// (checked by exporter/basic_auth.h), tls_server_config (served by exporter/tls.h) and
// http_server_config's response headers.
#ifndef DEVSCOPE_EXPORTER_WEB_CONFIG_H_
#define DEVSCOPE_EXPORTER_WEB_CONFIG_H_

#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace devscope {

struct TlsServerConfig {
  // Absolute paths (the file gives them relative to its own directory, as the toolkit does).
  std::string cert_file;  // PEM: the certificate, then its chain
  std::string key_file;   // PEM private key
  std::string client_ca_file;
  enum class ClientAuth {
    kNone,              // NoClientCert
    kRequest,           // RequestClientCert: asked for, not verified
    kRequireAny,        // RequireAnyClientCert: required, not verified
    kVerifyIfGiven,     // VerifyClientCertIfGiven
    kRequireAndVerify,  // RequireAndVerifyClientCert
  };
  ClientAuth client_auth = ClientAuth::kNone;
  int min_version = 0x0303;  // TLS 1.2, the toolkit's default (OpenSSL's TLS1_2_VERSION)
  int max_version = 0;       // 0: the newest OpenSSL speaks
  std::string cipher_list;   // OpenSSL names, for TLS 1.2 and older; empty: OpenSSL's defaults
  std::string groups;        // OpenSSL group names ("P-256:X25519"); empty: OpenSSL's defaults
  bool prefer_server_cipher_suites = true;
};

struct WebConfig {
  std::map<std::string, std::string> basic_auth_users;  // user -> bcrypt hash
  std::optional<TlsServerConfig> tls;
  // http_server_config.headers, sent with every response (the toolkit's allowed names only).
  std::map<std::string, std::string> response_headers;

  bool auth_required() const { return !basic_auth_users.empty(); }
};

// Reads and validates the file. InvalidArgument naming the file, line and problem.
absl::StatusOr<WebConfig> LoadWebConfig(const std::string& path);

}  // namespace devscope

#endif  // DEVSCOPE_EXPORTER_WEB_CONFIG_H_
