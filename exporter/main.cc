// devscope: serve (the default), `demo` or `pod NS/NAME`.
#include <iostream>

#include "common/log.h"
#include "demo/demo.h"
#include "exporter/agent.h"
#include "exporter/flags.h"
#include "exporter/pod_command.h"

int main(int argc, char** argv) {
  using devscope::CommandLine;
  devscope::ParseResult parsed = devscope::ParseCommandLine(argc, argv, std::cout, std::cerr);
  if (parsed.exit_code) return *parsed.exit_code;
  const CommandLine& cl = parsed.command_line;
  switch (cl.command) {
    case CommandLine::Command::kPod:
      return devscope::RunPodCommand(cl.config, cl.pod, std::cout);
    case CommandLine::Command::kDemo:
      return devscope::RunDemo(cl.config);
    case CommandLine::Command::kServe:
      break;
  }
  devscope::BlockTerminationSignals();
  auto agent = devscope::Agent::Start(cl.config);
  if (!agent.ok()) {
    devscope::Log().error("start-up failed: {}", agent.status().message());
    // A listen address or web config that cannot work is bad configuration.
    return agent.status().code() == absl::StatusCode::kInvalidArgument ||
                   agent.status().code() == absl::StatusCode::kUnavailable
               ? 2
               : 1;
  }
  const int signal = devscope::WaitForTerminationSignal();
  devscope::Log().info("stopping signal={}", signal);
  agent->reset();
  return 0;
}
