// Basic auth: passwords checked against bcrypt hashes, verified credentials remembered (and only
// those, and only by the object that verified them), and one bcrypt for an unknown user as for a
// known one. That the two also take the same time is measured through the server
// (http_server_test).
#include "exporter/basic_auth.h"

#include <crypt.h>

#include <map>
#include <string>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace devscope {
namespace {

using Users = std::map<std::string, std::string>;

// bcrypt of "secret" at cost 4 (libcrypt).
constexpr char kSecretHash[] = "$2b$04$bK/WuQTajV.OYHjXQxavSu5LWpmDoxzhXv5fJy8uLlwt79pQC.Qn.";

std::string Basic(const std::string& user_and_password) {
  return "Basic " + absl::Base64Escape(user_and_password);
}

// A fresh bcrypt hash of `password` at cost 4.
std::string Hash(const std::string& password) {
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  crypt_data data{};
  crypt_gensalt_rn("$2b$", 4, nullptr, 0, setting, sizeof(setting));
  return crypt_r(password.c_str(), setting, &data);
}

TEST(BasicAuthTest, ChecksPasswordsAgainstBcryptHashes) {
  BasicAuth auth(Users{{"prometheus", kSecretHash}});
  EXPECT_TRUE(auth.Verify(Basic("prometheus:secret")));
  EXPECT_FALSE(auth.Verify(Basic("prometheus:Secret")));
  EXPECT_FALSE(auth.Verify(Basic("prometheus:")));
  EXPECT_FALSE(auth.Verify(Basic("grafana:secret")));
  EXPECT_FALSE(auth.Verify(Basic("prometheussecret")));
  EXPECT_FALSE(auth.Verify("Bearer abc"));
  EXPECT_FALSE(auth.Verify("Basic !!!not-base64"));
  EXPECT_EQ(auth.CheckRemembered("Bearer abc"), BasicAuth::Verdict::kDenied);
  EXPECT_EQ(auth.CheckRemembered("Basic !!!not-base64"), BasicAuth::Verdict::kDenied);
}

TEST(BasicAuthTest, VerifiedCredentialsAreRememberedAndOnlyThose) {
  BasicAuth auth(Users{{"prometheus", kSecretHash}, {"grafana", Hash("other")}});
  EXPECT_EQ(auth.CheckRemembered(Basic("prometheus:secret")), BasicAuth::Verdict::kNeedsBcrypt);
  EXPECT_TRUE(auth.Verify(Basic("prometheus:secret")));
  const int runs = auth.bcrypt_runs();
  EXPECT_EQ(auth.CheckRemembered(Basic("prometheus:secret")), BasicAuth::Verdict::kAllowed);
  EXPECT_EQ(auth.bcrypt_runs(), runs);  // remembered: no bcrypt
  // A wrong password, another user's password, or the right one for another user: not remembered.
  EXPECT_FALSE(auth.Verify(Basic("prometheus:wrong")));
  EXPECT_EQ(auth.CheckRemembered(Basic("prometheus:wrong")), BasicAuth::Verdict::kNeedsBcrypt);
  EXPECT_EQ(auth.CheckRemembered(Basic("grafana:secret")), BasicAuth::Verdict::kNeedsBcrypt);
  EXPECT_EQ(auth.CheckRemembered(Basic("prometheus:secreT")), BasicAuth::Verdict::kNeedsBcrypt);
}

TEST(BasicAuthTest, AnotherConfigRemembersNothing) {
  BasicAuth before(Users{{"prometheus", kSecretHash}});
  ASSERT_TRUE(before.Verify(Basic("prometheus:secret")));
  // The same file read again: a new object, an empty memory (and a new key).
  BasicAuth reloaded(Users{{"prometheus", kSecretHash}});
  EXPECT_EQ(reloaded.CheckRemembered(Basic("prometheus:secret")), BasicAuth::Verdict::kNeedsBcrypt);
  // The password changed: the old one no longer verifies.
  BasicAuth changed(Users{{"prometheus", Hash("new secret")}});
  EXPECT_FALSE(changed.Verify(Basic("prometheus:secret")));
  EXPECT_TRUE(changed.Verify(Basic("prometheus:new secret")));
}

TEST(BasicAuthTest, AnUnknownUserCostsABcryptLikeAKnownOne) {
  BasicAuth auth(Users{{"prometheus", kSecretHash}});
  int runs = auth.bcrypt_runs();
  EXPECT_FALSE(auth.Verify(Basic("nobody:secret")));
  EXPECT_EQ(auth.bcrypt_runs(), runs + 1);
  EXPECT_FALSE(auth.Verify(Basic("prometheus:wrong")));
  EXPECT_EQ(auth.bcrypt_runs(), runs + 2);
  EXPECT_FALSE(auth.Verify("Bearer abc"));
  EXPECT_EQ(auth.bcrypt_runs(), runs + 3);
}

}  // namespace
}  // namespace devscope
