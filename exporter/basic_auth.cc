#include "exporter/basic_auth.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/log.h"

namespace devscope {
namespace {

// bcrypt's cost, the two digits after "$2b$".
int BcryptCost(const std::string& hash) {
  int cost = 0;
  return hash.size() > 6 && absl::SimpleAtoi(hash.substr(4, 2), &cost) ? cost : 0;
}

// A bcrypt setting of `cost` with a random salt, padded to a full hash's length. crypt reads only
// the setting, so checking any password against it costs what checking a real hash does, and no
// password matches it (its hash part is not what bcrypt makes from that salt).
std::string DummyHash(int cost) {
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  if (crypt_gensalt_rn("$2b$", cost, nullptr, 0, setting, sizeof(setting)) == nullptr) {
    // Only when libcrypt has no bcrypt, which LoadWebConfig's hashes would also have hit.
    Log().error("basic auth: libcrypt cannot make a bcrypt salt; unknown users cost no bcrypt");
    return "";
  }
  std::string hash(setting);
  hash.resize(60, 'x');
  return hash;
}

}  // namespace

BasicAuth::BasicAuth(const std::map<std::string, std::string>& users) {
  int cost = 4;  // bcrypt's lowest
  for (const auto& [name, hash] : users) {
    User user;
    SHA256(reinterpret_cast<const unsigned char*>(name.data()), name.size(),
           user.name_digest.data());
    user.hash = hash;
    users_.push_back(std::move(user));
    cost = std::max(cost, BcryptCost(hash));
  }
  dummy_hash_ = DummyHash(cost);
  remember_ = RAND_bytes(key_.data(), key_.size()) == 1;
  if (!remember_) {
    // Without a secret key the memory could be probed offline: do without it.
    Log().error("basic auth: no random bytes from OpenSSL; every request costs a bcrypt");
  }
}

bool BasicAuth::Parse(absl::string_view header, Credentials& out) {
  if (!absl::ConsumePrefix(&header, "Basic ")) return false;
  std::string decoded;
  if (!absl::Base64Unescape(absl::StripAsciiWhitespace(header), &decoded)) return false;
  const size_t colon = decoded.find(':');
  if (colon == std::string::npos) return false;
  out.user = decoded.substr(0, colon);
  out.password = decoded.substr(colon + 1);
  return true;
}

const std::string& BasicAuth::HashFor(const std::string& user) const {
  Digest digest;
  SHA256(reinterpret_cast<const unsigned char*>(user.data()), user.size(), digest.data());
  const std::string* found = &dummy_hash_;
  for (const User& candidate : users_) {
    // Every name is compared in full; which one matched changes no work done.
    const bool match =
        CRYPTO_memcmp(candidate.name_digest.data(), digest.data(), digest.size()) == 0;
    found = match ? &candidate.hash : found;
  }
  return *found;
}

std::optional<std::string> BasicAuth::Remembrance(const Credentials& credentials,
                                                  const std::string& hash) const {
  if (!remember_) return std::nullopt;
  // Length-prefixed fields: ("ab", "c") and ("a", "bc") differ.
  std::string message;
  for (const std::string* field : {&credentials.user, &credentials.password, &hash}) {
    const uint64_t size = field->size();
    message.append(reinterpret_cast<const char*>(&size), sizeof(size));
    message.append(*field);
  }
  std::string digest(32, '\0');
  size_t length = 0;
  const bool made = EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key_.data(), key_.size(),
                              reinterpret_cast<const unsigned char*>(message.data()),
                              message.size(), reinterpret_cast<unsigned char*>(digest.data()),
                              digest.size(), &length) != nullptr &&
                    length == digest.size();
  OPENSSL_cleanse(message.data(), message.size());
  if (!made) return std::nullopt;
  return digest;
}

BasicAuth::Verdict BasicAuth::CheckRemembered(absl::string_view header) const {
  Credentials credentials;
  if (!Parse(header, credentials)) return Verdict::kDenied;
  const std::optional<std::string> digest = Remembrance(credentials, HashFor(credentials.user));
  OPENSSL_cleanse(credentials.password.data(), credentials.password.size());
  if (!digest.has_value()) return Verdict::kNeedsBcrypt;
  // A set lookup is not constant-time, but what it compares is an HMAC under a key no client
  // knows: its timing says nothing about the password.
  absl::MutexLock lock(&mu_);
  return remembered_.contains(*digest) ? Verdict::kAllowed : Verdict::kNeedsBcrypt;
}

bool BasicAuth::Verify(absl::string_view header) {
  Credentials credentials;
  const bool parsed = Parse(header, credentials);
  const std::string& hash = HashFor(credentials.user);
  const bool known = &hash != &dummy_hash_;
  // crypt_r's state is large; keep it off the (worker thread's) stack.
  auto data = std::make_unique<crypt_data>();
  std::memset(data.get(), 0, sizeof(crypt_data));
  const char* computed = crypt_r(credentials.password.c_str(), hash.c_str(), data.get());
  bcrypt_runs_.fetch_add(1);
  const bool match = computed != nullptr && std::strlen(computed) == hash.size() &&
                     CRYPTO_memcmp(computed, hash.data(), hash.size()) == 0;
  const bool allowed = parsed && known && match;
  if (allowed) {
    if (std::optional<std::string> digest = Remembrance(credentials, hash)) {
      absl::MutexLock lock(&mu_);
      if (remembered_.size() >= kMaxRemembered) remembered_.clear();
      remembered_.insert(*std::move(digest));
    }
  }
  OPENSSL_cleanse(credentials.password.data(), credentials.password.size());
  OPENSSL_cleanse(data.get(), sizeof(crypt_data));
  return allowed;
}

}  // namespace devscope
