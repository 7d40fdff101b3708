// devscope: serve (the default), `demo`, `pod NS/NAME` or `options` (a maintainer's command).
#include <malloc.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "agent/agent.h"
#include "cmd/flags.h"
#include "cmd/pod_command.h"
#include "common/log.h"
#include "common/signals.h"
#include "common/version.h"
#include "demo/demo.h"

namespace devscope {
namespace {

// Runs the agent until SIGINT or SIGTERM.
int Serve(const AgentOptions& options) {
  BlockTerminationSignals();
  auto agent = Agent::Start(options);
  if (!agent.ok()) {
    Log().error("start-up failed: {}", agent.status().message());
    // A listen address or web config that cannot work is bad configuration.
    return agent.status().code() == absl::StatusCode::kInvalidArgument ||
                   agent.status().code() == absl::StatusCode::kUnavailable
               ? 2
               : 1;
  }
  const int signal = WaitForTerminationSignal();
  Log().info("stopping signal={}", signal);
  agent->reset();
  if (Agent::LeftThreadsRunning()) {
    // A collector's thread is stuck in a call that may yet return: end here, before the static
    // objects it would then use (the logger among them) are destroyed.
    std::fflush(nullptr);
    std::_Exit(0);
  }
  return 0;
}

}  // namespace
}  // namespace devscope

int main(int argc, char** argv) {
  // glibc gives each thread that allocates its own arena and keeps what is freed there, so every
  // thread that renders (the collectors, the poller, the HTTP server's workers) would end up
  // holding a render's worth of memory: measured at 250 pods x 4 x 4 and 1,024 devices (with the
  // earlier HTTP server's four workers), resident memory levelled off at 64 MiB with the default
  // and at 46 MiB with two arenas (bench/node_probe).
  mallopt(M_ARENA_MAX, 2);
  // Blocks of 128 KiB and more (the exposition text, a List reply's arena, compression state) are
  // mapped for themselves and given back when freed, and free memory at the top of an arena is
  // given back past 128 KiB. glibc's default raises the mapping threshold to the largest block
  // freed so far, after which a render's 1.7 MB buffer stays in the arena, freed but resident:
  // at the bench node (bench/node_probe) 36.8 MiB resident with the default, 29.5 MiB with these.
  mallopt(M_MMAP_THRESHOLD, 128 << 10);
  mallopt(M_TRIM_THRESHOLD, 128 << 10);
  using devscope::CommandLine;
  // Start-up steps: parse the command line and the config file (cmd/flags.h), configure logging,
  // then run the command.
  devscope::ParseResult parsed = devscope::ParseCommandLine(argc, argv, std::cout, std::cerr);
  if (parsed.exit_code) return *parsed.exit_code;
  const CommandLine& cl = parsed.command_line;
  if (absl::Status logging = devscope::ConfigureLogging(cl.options.log); !logging.ok()) {
    std::cerr << "devscope: " << logging.message() << "\n";
    return 2;
  }
  switch (cl.command) {
    case CommandLine::Command::kOptions: {
      absl::StatusOr<std::string> document = devscope::OptionsDocument(cl.options_format);
      if (!document.ok()) {
        std::cerr << "devscope: " << document.status().message() << "\n";
        return 2;
      }
      std::cout << *document;
      return 0;
    }
    case CommandLine::Command::kPod:
      return devscope::RunPodCommand(cl.options.agent.pod_resources, cl.pod, std::cout);
    case CommandLine::Command::kDemo:
      return devscope::RunDemo(cl.options.agent);
    case CommandLine::Command::kServe:
      break;
  }
  return devscope::Serve(cl.options.agent);
}
