// devicedir's `health` file: only Healthy (any case) or nothing is healthy.
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "collectors/devicedir_files.h"
#include "test/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace devscope;
  const absl::string_view text = AsText(data, size);
  const Parsed<HealthSignal> parsed = ParseHealthFile(text);
  CheckLineErrors("devicedir_health_fuzzer", text, parsed.errors);
  const absl::string_view word = absl::StripAsciiWhitespace(text);
  const bool healthy_text = word.empty() || absl::EqualsIgnoreCase(word, "healthy");
  if (parsed.value.healthy != healthy_text) FuzzFail("devicedir_health_fuzzer", "wrong health");
  if (!parsed.value.healthy && parsed.value.reason.empty()) {
    FuzzFail("devicedir_health_fuzzer", "unhealthy without a reason");
  }
  return 0;
}
