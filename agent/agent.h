// The running agent: the start-up steps in order (web config, pod-resources poller, collectors,
// device plugin, HTTP server), each returning a status, and a teardown that always runs in
// reverse. Used by `devscope` itself and by `devscope demo`.
#ifndef DEVSCOPE_AGENT_AGENT_H_
#define DEVSCOPE_AGENT_AGENT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "agent/agent_options.h"

namespace devscope {

class Agent {
 public:
  // Runs the start-up steps; on a failed step, tears down what was started and returns the error.
  static absl::StatusOr<std::unique_ptr<Agent>> Start(const AgentOptions& options);
  ~Agent();  // the teardown

  // http://HOST:PORT/PATH of the metrics endpoint.
  std::string metrics_url() const;

  // Whether a teardown left a thread running: a collector stuck in a pass that did not end within
  // the runner's stop grace (CollectorRunner::Stop). The process should then end at once with
  // std::_Exit, without the destructors of static objects that the thread may still use.
  static bool LeftThreadsRunning();

  struct Parts;

 private:
  explicit Agent(std::unique_ptr<Parts> parts);
  std::unique_ptr<Parts> parts_;
};

}  // namespace devscope

#endif  // DEVSCOPE_AGENT_AGENT_H_
