// devicedir's `numa_node` file: a node is never negative; anything else is one error.
#include "collectors/devicedir_files.h"
#include "test/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace devscope;
  const absl::string_view text = AsText(data, size);
  const Parsed<std::optional<int64_t>> parsed = ParseNumaNodeFile(text);
  CheckLineErrors("devicedir_numa_node_fuzzer", text, parsed.errors);
  if (parsed.value.has_value() && *parsed.value < 0)
    FuzzFail("devicedir_numa_node_fuzzer", "negative");
  if (parsed.errors.size() > 1) FuzzFail("devicedir_numa_node_fuzzer", "more than one error");
  if (!parsed.errors.empty() && parsed.value.has_value()) {
    FuzzFail("devicedir_numa_node_fuzzer", "a node despite an error");
  }
  return 0;
}
