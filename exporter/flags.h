// The command line: flags of interface.md (Prometheus exporter conventions, dotted names) parsed
// with CLI11 into a Config, plus the subcommand. Bad input is one line and exit status 2.
#ifndef DEVSCOPE_EXPORTER_FLAGS_H_
#define DEVSCOPE_EXPORTER_FLAGS_H_

#include <optional>
#include <ostream>
#include <string>

#include "common/config.h"

namespace devscope {

struct CommandLine {
  enum class Command { kServe, kDemo, kPod };
  Command command = Command::kServe;
  Config config;
  std::string pod;  // NS/NAME for `devscope pod`
};

struct ParseResult {
  // Set when parsing ends the process: 0 after --help or --version (printed to `out`), 2 after a
  // bad flag or config (one line printed to `err`).
  std::optional<int> exit_code;
  CommandLine command_line;
};

// Parses argv, loads --config.file over the flags, and checks explicitly given paths.
ParseResult ParseCommandLine(int argc, const char* const* argv, std::ostream& out,
                             std::ostream& err);

// "devscope VERSION (revision REV)".
std::string VersionString();
const char* Version();
const char* Revision();

}  // namespace devscope

#endif  // DEVSCOPE_EXPORTER_FLAGS_H_
