// The command line: CLI11 flags made from the option declarations (common/options.h), the
// subcommands, and the start-up steps that read and check them. Bad input is one line and exit
// status 2.
#ifndef DEVSCOPE_CMD_FLAGS_H_
#define DEVSCOPE_CMD_FLAGS_H_

#include <optional>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/agent_options.h"
#include "cmd/pod_command.h"
#include "common/log.h"
#include "common/options.h"

namespace devscope {

// Everything the command line and --config.file set.
struct CommandOptions {
  AgentOptions agent;
  std::string config_file;  // --config.file
  LogOptions log;           // --log.*
};
void DeclareOptions(OptionDeclarer& d, CommandOptions& o);

struct CommandLine {
  enum class Command { kServe, kDemo, kPod, kOptions };
  Command command = Command::kServe;
  CommandOptions options;
  PodRef pod;                  // kPod: NAMESPACE/NAME
  std::string options_format;  // kOptions: one of OptionsDocumentFormats()
};

struct ParseResult {
  // Set when parsing ends the process: 0 after --help or --version (printed to `out`), 2 after a
  // bad flag or config (one line printed to `err`).
  std::optional<int> exit_code;
  CommandLine command_line;
};

// The start-up steps before anything runs, in order: read the command line (flags over the
// defaults), read --config.file (its keys over the defaults; a flag given wins), check the
// options (every declared check, on the final values). Nothing is configured or started here.
ParseResult ParseCommandLine(int argc, const char* const* argv, std::ostream& out,
                             std::ostream& err);

// `devscope options --format=FORMAT`, a maintainer's command (hidden from --help):
//   flags-markdown   the flag table of docs/interface.md
//   config-markdown  the --config.file key table of docs/interface.md
//   config-schema    the JSON schema of --config.file (the Helm chart's config.* values)
absl::StatusOr<std::string> OptionsDocument(absl::string_view format);

}  // namespace devscope

#endif  // DEVSCOPE_CMD_FLAGS_H_
