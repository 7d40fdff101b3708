#include "common/signals.h"

#include <pthread.h>
#include <signal.h>

#include <cerrno>

namespace devscope {
namespace {

sigset_t TerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

}  // namespace

void BlockTerminationSignals() {
  const sigset_t set = TerminationSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int WaitForTerminationSignal(absl::Duration timeout) {
  const sigset_t set = TerminationSignals();
  if (timeout == absl::InfiniteDuration()) {
    int signal = 0;
    while (sigwait(&set, &signal) != 0) {
    }
    return signal;
  }
  const timespec wait = absl::ToTimespec(timeout);
  while (true) {
    const int signal = sigtimedwait(&set, nullptr, &wait);
    if (signal > 0) return signal;
    if (errno != EINTR) return 0;  // EAGAIN: the timeout passed
  }
}

}  // namespace devscope
