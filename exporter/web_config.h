// --web.config.file: the exporter-toolkit's web config, basic_auth_users part. Passwords are
// bcrypt hashes, checked with libcrypt's crypt_r (Debian's libxcrypt implements bcrypt).
#ifndef DEVSCOPE_EXPORTER_WEB_CONFIG_H_
#define DEVSCOPE_EXPORTER_WEB_CONFIG_H_

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace devscope {

struct WebConfig {
  std::map<std::string, std::string> basic_auth_users;  // user -> bcrypt hash

  bool auth_required() const { return !basic_auth_users.empty(); }
  // Checks an Authorization header value ("Basic base64(user:password)").
  bool Authorized(absl::string_view authorization_header) const;
};

// Reads and validates the file. InvalidArgument naming the file, line and problem.
absl::StatusOr<WebConfig> LoadWebConfig(const std::string& path);

}  // namespace devscope

#endif  // DEVSCOPE_EXPORTER_WEB_CONFIG_H_
