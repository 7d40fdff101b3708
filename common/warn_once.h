// Logging a persistent problem once rather than on every pass of a loop that keeps meeting it: a
// collector runs every few seconds, and an unreadable attribute should be one log line, not one
// a pass.
#ifndef DEVSCOPE_COMMON_WARN_ONCE_H_
#define DEVSCOPE_COMMON_WARN_ONCE_H_

#include <set>
#include <string>

#include "absl/strings/string_view.h"

namespace devscope {

// Not thread-safe: one owner thread (a collector's).
class WarnOnce {
 public:
  // `prefix` starts every line, e.g. "collector=nvml " or "devicedir: ".
  explicit WarnOnce(std::string prefix) : prefix_(std::move(prefix)) {}

  // Logs prefix + `message` at warn level the first time `key` is given; true when it logged.
  bool Warn(const std::string& key, absl::string_view message);

  // Forgets every key not given to Warn since the last call, so that a problem that went away
  // is logged again when it comes back (a caller that calls this once per pass logs each problem
  // once while it lasts).
  void ForgetAbsent();

 private:
  const std::string prefix_;
  std::set<std::string> warned_;
  std::set<std::string> seen_;  // keys given since the last ForgetAbsent()
};

}  // namespace devscope

#endif  // DEVSCOPE_COMMON_WARN_ONCE_H_
