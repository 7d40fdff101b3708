// devscope: serve (the default), `demo` or `pod NS/NAME`.
#include <malloc.h>

#include <iostream>

#include "common/log.h"
#include "demo/demo.h"
#include "exporter/agent.h"
#include "exporter/flags.h"
#include "exporter/pod_command.h"

int main(int argc, char** argv) {
  // glibc gives each thread that allocates its own arena and keeps what is freed there, so every
  // thread that renders (the collectors, the poller, the HTTP server's workers) would end up
  // holding a render's worth of memory: measured at 250 pods x 4 x 4 and 1,024 devices (with the
  // earlier HTTP server's four workers), resident memory levelled off at 64 MiB with the default
  // and at 46 MiB with two arenas (bench/node_probe).
  mallopt(M_ARENA_MAX, 2);
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
