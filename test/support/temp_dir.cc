#include "test/support/temp_dir.h"

#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace devscope {

TempDir::TempDir() {
  char dir[] = "/tmp/dstest-XXXXXX";
  if (mkdtemp(dir) == nullptr) {
    std::perror("mkdtemp /tmp/dstest-XXXXXX");
    std::abort();
  }
  path_ = dir;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::Path(absl::string_view relative) const {
  return absl::StrCat(path_, "/", relative);
}

void WriteFile(const std::string& path, absl::string_view content) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  std::ofstream out(path, std::ios::trunc | std::ios::binary);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
}

}  // namespace devscope
