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

  struct Parts;

 private:
  explicit Agent(std::unique_ptr<Parts> parts);
  std::unique_ptr<Parts> parts_;
};

}  // namespace devscope

#endif  // DEVSCOPE_AGENT_AGENT_H_
