// Scratch files for tests: a temporary directory that removes itself, and writing a file with
// its parent directories.
#ifndef DEVSCOPE_TEST_SUPPORT_TEMP_DIR_H_
#define DEVSCOPE_TEST_SUPPORT_TEMP_DIR_H_

#include <string>

#include "absl/strings/string_view.h"

namespace devscope {

// A fresh directory under /tmp, removed with everything in it when the object goes. Its path is
// short on purpose: unix socket paths inside it must fit in 108 bytes. Aborts when /tmp refuses.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + relative.
  std::string Path(absl::string_view relative) const;

 private:
  std::string path_;
};

// Writes `content` to `path` (replacing it), creating the parent directories first.
void WriteFile(const std::string& path, absl::string_view content);

}  // namespace devscope

#endif  // DEVSCOPE_TEST_SUPPORT_TEMP_DIR_H_
