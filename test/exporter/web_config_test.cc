#include "exporter/web_config.h"

#include <stdlib.h>

#include <fstream>
#include <string>

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace devscope {
namespace {

using ::testing::HasSubstr;

// bcrypt of "secret" at cost 4 (libcrypt).
constexpr char kHash[] = "$2b$04$bK/WuQTajV.OYHjXQxavSu5LWpmDoxzhXv5fJy8uLlwt79pQC.Qn.";

std::string Write(const std::string& text) {
  char dir[] = "/tmp/devscope-web.XXXXXX";
  const std::string path = std::string(mkdtemp(dir)) + "/web.yaml";
  std::ofstream(path) << text;
  return path;
}

TEST(WebConfigTest, LoadsBcryptUsersAndChecksPasswords) {
  auto config = LoadWebConfig(Write(std::string("basic_auth_users:\n  prometheus: ") + kHash + "\n"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->auth_required());
  EXPECT_TRUE(config->Authorized("Basic " + absl::Base64Escape("prometheus:secret")));
  EXPECT_FALSE(config->Authorized("Basic " + absl::Base64Escape("prometheus:Secret")));
  EXPECT_FALSE(config->Authorized("Basic " + absl::Base64Escape("grafana:secret")));
  EXPECT_FALSE(config->Authorized("Bearer abc"));
  EXPECT_FALSE(config->Authorized("Basic !!!not-base64"));
}

TEST(WebConfigTest, EmptyFileMeansNoAuth) {
  auto config = LoadWebConfig(Write(""));
  ASSERT_TRUE(config.ok());
  EXPECT_FALSE(config->auth_required());
}

TEST(WebConfigTest, RefusesWhatItCannotHonour) {
  const std::string plain = Write("basic_auth_users:\n  prometheus: secret\n");
  EXPECT_THAT(LoadWebConfig(plain).status().message(), HasSubstr(plain + ":2:"));
  EXPECT_THAT(LoadWebConfig(plain).status().message(), HasSubstr("not a bcrypt hash"));
  const std::string tls = Write("tls_server_config:\n  cert_file: a.pem\n");
  EXPECT_THAT(LoadWebConfig(tls).status().message(), HasSubstr("not supported yet"));
  const std::string unknown = Write("basic_auth_user: {}\n");
  EXPECT_THAT(LoadWebConfig(unknown).status().message(), HasSubstr("unknown key"));
  EXPECT_FALSE(LoadWebConfig("/nonexistent/web.yaml").ok());
}

}  // namespace
}  // namespace devscope
