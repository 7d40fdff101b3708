// SIGINT and SIGTERM, taken synchronously: blocked in every thread and waited for by one (the
// main thread of `devscope` and of `devscope demo`), so no handler runs at an arbitrary point.
#ifndef DEVSCOPE_COMMON_SIGNALS_H_
#define DEVSCOPE_COMMON_SIGNALS_H_

#include "absl/time/time.h"

namespace devscope {

// Blocks SIGINT and SIGTERM in the calling thread (and so in every thread started after). Call
// before starting threads.
void BlockTerminationSignals();

// Waits up to `timeout` for SIGINT or SIGTERM (blocked first); returns its number, or 0 when the
// timeout passed first.
int WaitForTerminationSignal(absl::Duration timeout = absl::InfiniteDuration());

}  // namespace devscope

#endif  // DEVSCOPE_COMMON_SIGNALS_H_
