// --web.config.file: any text is loaded, or refused with InvalidArgument naming the file and a
// line; never a crash or an escaped exception.
#include "absl/strings/match.h"
#include "exporter/web_config.h"
#include "test/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  devscope::QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace devscope;
  static const ScratchFile file("web.yaml");
  file.Write(AsText(data, size));
  const absl::StatusOr<WebConfig> config = LoadWebConfig(file.path());
  if (config.ok()) {
    for (const auto& [user, hash] : config->basic_auth_users) {
      if (hash.size() != 60) FuzzFail("web_config_fuzzer", "kept a hash that is not bcrypt's");
    }
    return 0;
  }
  if (!absl::IsInvalidArgument(config.status()) ||
      !absl::StartsWith(config.status().message(), file.path() + ":")) {
    FuzzFail("web_config_fuzzer", "refused without naming the file: " + config.status().ToString());
  }
  return 0;
}
