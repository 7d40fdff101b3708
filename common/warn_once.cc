#include "common/warn_once.h"

#include <utility>

#include "common/log.h"

namespace devscope {

bool WarnOnce::Warn(const std::string& key, absl::string_view message) {
  seen_.insert(key);
  if (!warned_.insert(key).second) return false;
  Log().warn("{}{}", prefix_, message);
  return true;
}

void WarnOnce::ForgetAbsent() {
  warned_ = std::move(seen_);
  seen_.clear();
}

}  // namespace devscope
