#include "exporter/web_config.h"

#include <stdlib.h>

#include <fstream>
#include <string>
#include <utility>
#include <vector>

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

// Checking passwords against them: basic_auth_test.
TEST(WebConfigTest, LoadsBcryptUsers) {
  auto config =
      LoadWebConfig(Write(std::string("basic_auth_users:\n  prometheus: ") + kHash + "\n"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->auth_required());
  EXPECT_EQ(config->basic_auth_users.at("prometheus"), kHash);
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
  EXPECT_THAT(LoadWebConfig(tls).status().message(),
              HasSubstr("needs both cert_file and key_file"));
  const std::string unknown = Write("basic_auth_user: {}\n");
  EXPECT_THAT(LoadWebConfig(unknown).status().message(), HasSubstr("unknown key"));
  EXPECT_FALSE(LoadWebConfig("/nonexistent/web.yaml").ok());
}

TEST(WebConfigTest, ReadsTlsServerConfigLikeTheToolkit) {
  const std::string path = Write(
      "tls_server_config:\n"
      "  cert_file: tls/server.crt\n"
      "  key_file: /etc/keys/server.key\n"
      "  client_ca_file: ca.pem\n"
      "  min_version: TLS13\n"
      "  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, "
      "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305]\n"
      "  curve_preferences: [X25519, CurveP256]\n"
      "  prefer_server_cipher_suites: false\n"
      "http_server_config:\n"
      "  http2: true\n"
      "  headers:\n"
      "    Strict-Transport-Security: max-age=31536000\n");
  auto config = LoadWebConfig(path);
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_TRUE(config->tls.has_value());
  const std::string dir = path.substr(0, path.rfind('/'));
  EXPECT_EQ(config->tls->cert_file, dir + "/tls/server.crt");  // relative to the config file
  EXPECT_EQ(config->tls->key_file, "/etc/keys/server.key");
  EXPECT_EQ(config->tls->client_ca_file, dir + "/ca.pem");
  // A CA without a type: every client must show a certificate it signed, as in the toolkit.
  EXPECT_EQ(config->tls->client_auth, TlsServerConfig::ClientAuth::kRequireAndVerify);
  EXPECT_EQ(config->tls->min_version, 0x0304);
  EXPECT_EQ(config->tls->cipher_list, "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305");
  EXPECT_EQ(config->tls->groups, "X25519:P-256");
  EXPECT_FALSE(config->tls->prefer_server_cipher_suites);
  EXPECT_EQ(config->response_headers.at("Strict-Transport-Security"), "max-age=31536000");

  auto plain = LoadWebConfig(Write("tls_server_config:\n  cert_file: a\n  key_file: b\n"));
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->tls->client_auth, TlsServerConfig::ClientAuth::kNone);
  EXPECT_EQ(plain->tls->min_version, 0x0303);  // TLS 1.2 unless told
}

TEST(WebConfigTest, RefusesTlsSettingsItCannotHonour) {
  const std::string base = "tls_server_config:\n  cert_file: a\n  key_file: b\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"  min_version: SSL3\n", "min_version is not one of"},
      {"  min_version: TLS13\n  max_version: TLS12\n", "max_version is below min_version"},
      {"  cipher_suites: [TLS_RSA_WITH_NOTHING]\n", "unknown cipher suite TLS_RSA_WITH_NOTHING"},
      {"  cipher_suites: [TLS_AES_128_GCM_SHA256]\n", "TLS 1.3 suites cannot be chosen"},
      {"  curve_preferences: [CurveP224]\n", "curve_preferences: not one of"},
      {"  client_auth_type: RequireAndVerifyClientCert\n", "needs client_ca_file"},
      {"  client_auth_type: Sometimes\n", "unknown client_auth_type Sometimes"},
      {"  client_ca_file: ca.pem\n  client_auth_type: NoClientCert\n",
       "does not verify client certificates"},
      {"  client_allowed_sans: [a]\n", "is not supported"},
      {"  certfile: c\n", "unknown key \"tls_server_config.certfile\""},
  };
  for (const auto& [extra, message] : cases) {
    auto config = LoadWebConfig(Write(base + extra));
    EXPECT_THAT(config.status().message(), HasSubstr(message)) << extra;
  }
  auto header = LoadWebConfig(Write("http_server_config:\n  headers:\n    Server: x\n"));
  EXPECT_THAT(header.status().message(), HasSubstr("Server cannot be set"));
}

}  // namespace
}  // namespace devscope
