// devicedir's `resource` file: an accepted name is domain/name of printable ASCII, no blank.
#include <algorithm>

#include "collectors/devicedir_files.h"
#include "test/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace devscope;
  const absl::StatusOr<std::string> resource = ParseResourceFile(AsText(data, size));
  if (!resource.ok()) {
    if (resource.status().message().empty()) FuzzFail("devicedir_resource_fuzzer", "no reason");
    return 0;
  }
  const size_t slash = resource->find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == resource->size() ||
      resource->find('/', slash + 1) != std::string::npos ||
      std::any_of(resource->begin(), resource->end(), [](char c) { return c <= ' ' || c > '~'; })) {
    FuzzFail("devicedir_resource_fuzzer", "accepted \"" + *resource + "\"");
  }
  return 0;
}
