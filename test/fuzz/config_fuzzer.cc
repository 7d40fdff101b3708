// --config.file as `devscope --config.file=FILE` reads it (ParseCommandLine: the option
// declarations' YAML loader, then every option's checks): any text is taken, or refused with exit
// status 2 and one line saying why; never a crash, a hang or an escaped exception.
#include <algorithm>
#include <sstream>
#include <string>

#include "cmd/flags.h"
#include "test/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  devscope::QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace devscope;
  static const ScratchFile file("config.yaml");
  file.Write(AsText(data, size));
  const std::string flag = "--config.file=" + file.path();
  const char* const argv[] = {"devscope", flag.c_str()};
  std::ostringstream out;
  std::ostringstream err;
  const ParseResult result = ParseCommandLine(2, argv, out, err);
  if (!result.exit_code.has_value()) return 0;
  const std::string said = err.str();
  if (*result.exit_code != 2) FuzzFail("config_fuzzer", "exit status other than 2: " + said);
  if (said.empty() || said.back() != '\n' || std::count(said.begin(), said.end(), '\n') != 1) {
    FuzzFail("config_fuzzer", "refused without exactly one line: " + said);
  }
  return 0;
}
