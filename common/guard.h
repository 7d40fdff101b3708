// The boundary where no exception may pass: a thread's body, a gRPC handler, a C callback. Our own
// code returns absl::Status, but the standard library and third-party code can still throw
// (std::bad_alloc, std::length_error, a prometheus-cpp label check); such a throw must cost one
// operation and a log line, never std::terminate.
#ifndef DEVSCOPE_COMMON_GUARD_H_
#define DEVSCOPE_COMMON_GUARD_H_

#include <exception>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/log.h"

namespace devscope {

// Runs `fn`; a throw is logged naming `where` and comes back as Internal.
template <typename Fn>
absl::Status RunGuarded(absl::string_view where, Fn&& fn) noexcept {
  try {
    fn();
    return absl::OkStatus();
  } catch (const std::exception& e) {
    Log().error("{} failed: {}", where, e.what());
    return absl::InternalError(absl::StrCat(where, ": ", e.what()));
  } catch (...) {
    Log().error("{} failed with an unknown exception", where);
    return absl::InternalError(absl::StrCat(where, ": unknown exception"));
  }
}

}  // namespace devscope

#endif  // DEVSCOPE_COMMON_GUARD_H_
