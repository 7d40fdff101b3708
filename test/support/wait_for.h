// Waiting in tests for something another thread does.
#ifndef DEVSCOPE_TEST_SUPPORT_WAIT_FOR_H_
#define DEVSCOPE_TEST_SUPPORT_WAIT_FOR_H_

#include <functional>

#include "absl/time/time.h"

namespace devscope {

// Checks `done` every 5 ms until it holds (true) or `timeout` passes (false, after one last
// check). The timeout bounds a failing test; a passing one returns as soon as `done` holds.
bool WaitFor(const std::function<bool()>& done, absl::Duration timeout = absl::Seconds(10));

}  // namespace devscope

#endif  // DEVSCOPE_TEST_SUPPORT_WAIT_FOR_H_
