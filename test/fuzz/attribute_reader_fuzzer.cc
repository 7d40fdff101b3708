// A sysfs attribute's content read by AttributeReader::ReadNumber: a number or nothing, never a
// crash; nothing for content over the read's bound; the same answer twice (what is logged once
// is logged, not kept).
#include <cmath>

#include "collectors/attribute_reader.h"
#include "test/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  devscope::QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace devscope;
  static const ScratchFile file("attribute");
  file.Write(AsText(data, size));
  AttributeReader reader("fuzz");
  const std::optional<double> first = reader.ReadNumber(file.path());
  const std::optional<double> second = reader.ReadNumber(file.path());
  if (first.has_value() != second.has_value() ||
      (first.has_value() && !std::isnan(*first) && *first != *second)) {
    FuzzFail("attribute_reader_fuzzer", "two reads disagree");
  }
  if (size > 4096 && first.has_value()) FuzzFail("attribute_reader_fuzzer", "read past the bound");
  return 0;
}
