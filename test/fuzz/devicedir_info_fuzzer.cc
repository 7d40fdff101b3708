// devicedir's `info` file, parsed and applied to a device as the collector does.
#include "collectors/devicedir_files.h"
#include "test/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace devscope;
  const absl::string_view text = AsText(data, size);
  const Parsed<InfoFile> parsed = ParseInfoFile(text);
  CheckLineErrors("devicedir_info_fuzzer", text, parsed.errors);
  DeviceInfo info;
  ApplyInfoFile(parsed.value, info);
  if (!parsed.value.pci_address.empty() && info.pci_address.empty()) {
    FuzzFail("devicedir_info_fuzzer", "a given PCI address was lost");
  }
  return 0;
}
