// HTTP basic auth for the web config's basic_auth_users (bcrypt hashes), built so that answers
// tell an outsider nothing and a scrape does not cost a bcrypt:
// - credentials that verified are remembered, as an HMAC-SHA256 of (user, password, stored hash)
//   under a key drawn when this object is made (never the password itself); the web config is
//   immutable per object, so a reloaded config is a new object with an empty memory, and a
//   changed hash would not match anyway;
// - a user name that is not configured costs one bcrypt too, against a dummy hash of the highest
//   cost among the configured ones, so an unknown user and a wrong password take the same time;
// - the user name is compared with every configured one, without an early exit, as SHA-256
//   digests through CRYPTO_memcmp; bcrypt's output is compared with CRYPTO_memcmp.
// Only verified credentials are remembered: no one fills the memory without knowing a password.
#ifndef DEVSCOPE_EXPORTER_BASIC_AUTH_H_
#define DEVSCOPE_EXPORTER_BASIC_AUTH_H_

#include <array>
#include <atomic>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace devscope {

class BasicAuth {
 public:
  // `users`: user name -> bcrypt hash ($2a$, $2b$ or $2y$, as LoadWebConfig checks); not empty.
  explicit BasicAuth(const std::map<std::string, std::string>& users);
  BasicAuth(const BasicAuth&) = delete;
  BasicAuth& operator=(const BasicAuth&) = delete;

  enum class Verdict {
    kAllowed,      // credentials that verified before
    kDenied,       // not basic credentials at all (no "Basic ", bad base64, no colon)
    kNeedsBcrypt,  // well-formed, not remembered: Verify decides
  };
  // Cheap (one HMAC): never runs bcrypt. Thread-safe.
  Verdict CheckRemembered(absl::string_view authorization_header) const ABSL_LOCKS_EXCLUDED(mu_);
  // Runs exactly one bcrypt whatever the header holds (the dummy for an unknown user, and for a
  // header that is not basic credentials) and remembers credentials that match. Thread-safe;
  // the caller decides how many run at once.
  bool Verify(absl::string_view authorization_header) ABSL_LOCKS_EXCLUDED(mu_);

  // How many bcrypts Verify has run (for tests).
  int bcrypt_runs() const { return bcrypt_runs_.load(); }

 private:
  using Digest = std::array<unsigned char, 32>;
  struct User {
    Digest name_digest;  // SHA-256 of the name
    std::string hash;
  };
  struct Credentials {
    std::string user, password;
  };
  static bool Parse(absl::string_view header, Credentials& out);
  // The configured hash for `user`, or the dummy when there is none; constant time in the name.
  const std::string& HashFor(const std::string& user) const;
  // What is remembered of verified credentials: HMAC-SHA256 under key_; none without a key.
  std::optional<std::string> Remembrance(const Credentials& credentials,
                                         const std::string& hash) const;

  // Remembered credentials at most; the memory is emptied when full (only verified credentials
  // enter it, so it fills only when that many distinct passwords are in use).
  static constexpr size_t kMaxRemembered = 64;

  std::vector<User> users_;
  std::string dummy_hash_;               // a bcrypt setting no password matches
  std::array<unsigned char, 32> key_{};  // HMAC key, random per object
  bool remember_ = false;                // key_ was drawn
  mutable absl::Mutex mu_;
  absl::flat_hash_set<std::string> remembered_ ABSL_GUARDED_BY(mu_);
  std::atomic<int> bcrypt_runs_{0};
};

}  // namespace devscope

#endif  // DEVSCOPE_EXPORTER_BASIC_AUTH_H_
