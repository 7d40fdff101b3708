// The running agent: the start-up steps in order (web config, pod-resources poller, collectors,
// device plugin, HTTP server), each returning a status, and a teardown that always runs in
// reverse. Used by `devscope` itself and by `devscope demo`.
#ifndef DEVSCOPE_EXPORTER_AGENT_H_
#define DEVSCOPE_EXPORTER_AGENT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/config.h"

namespace devscope {

class Agent {
 public:
  // Runs the start-up steps; on a failed step, tears down what was started and returns the error.
  static absl::StatusOr<std::unique_ptr<Agent>> Start(const Config& config);
  ~Agent();  // the teardown

  // http://HOST:PORT/PATH of the metrics endpoint.
  std::string metrics_url() const;

  struct Parts;

 private:
  explicit Agent(std::unique_ptr<Parts> parts);
  std::unique_ptr<Parts> parts_;
};

// Blocks SIGINT and SIGTERM in the calling thread (and so in every thread started after), so
// that WaitForTerminationSignal can take them synchronously. Call before starting threads.
void BlockTerminationSignals();
// Waits for SIGINT or SIGTERM; returns its number.
int WaitForTerminationSignal();

}  // namespace devscope

#endif  // DEVSCOPE_EXPORTER_AGENT_H_
