// What the fuzz targets share: quiet logs (a parser logs what it skips; a fuzzer would print
// millions of lines) and a scratch file for the parsers that read a path.
#ifndef DEVSCOPE_TEST_FUZZ_FUZZ_SUPPORT_H_
#define DEVSCOPE_TEST_FUZZ_FUZZ_SUPPORT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "collectors/parsed.h"

namespace devscope {

// Turns logging off for the process (call once, from LLVMFuzzerInitialize).
void QuietLogs();

// A file in a directory of this process's own, rewritten with each input; the directory goes
// with the object (a function-local static goes at exit; a crash leaves it to look at).
class ScratchFile {
 public:
  explicit ScratchFile(absl::string_view name);
  ~ScratchFile();
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;

  const std::string& dir() const { return dir_; }
  const std::string& path() const { return path_; }
  // Replaces the file's content; aborts when it cannot (the run would test nothing).
  void Write(absl::string_view content) const;

 private:
  std::string dir_;
  std::string path_;
};

// Reports a broken promise and aborts, which libFuzzer records as a crash with its input.
[[noreturn]] void FuzzFail(absl::string_view target, absl::string_view what);

// Every error of a line parser names a line of `text` and says something.
void CheckLineErrors(absl::string_view target, absl::string_view text,
                     const std::vector<LineError>& errors);

inline absl::string_view AsText(const uint8_t* data, size_t size) {
  return absl::string_view(reinterpret_cast<const char*>(data), size);
}

}  // namespace devscope

#endif  // DEVSCOPE_TEST_FUZZ_FUZZ_SUPPORT_H_
