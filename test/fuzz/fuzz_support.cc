#include "test/fuzz/fuzz_support.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace devscope {

void FuzzFail(absl::string_view target, absl::string_view what) {
  std::fprintf(stderr, "%.*s: %.*s\n", static_cast<int>(target.size()), target.data(),
               static_cast<int>(what.size()), what.data());
  std::abort();
}

void CheckLineErrors(absl::string_view target, absl::string_view text,
                     const std::vector<LineError>& errors) {
  int lines = 1;
  for (char c : text) lines += c == '\n';
  for (const LineError& e : errors) {
    if (e.line < 1 || e.line > lines || e.problem.empty()) FuzzFail(target, "bad line error");
  }
}

void QuietLogs() { Log().set_level(spdlog::level::off); }

ScratchFile::ScratchFile(absl::string_view name) {
  std::string dir_template = (std::filesystem::temp_directory_path() / "devscope-fuzz-XXXXXX");
  if (::mkdtemp(dir_template.data()) == nullptr) {
    std::perror("mkdtemp");
    std::abort();
  }
  dir_ = dir_template;
  path_ = absl::StrCat(dir_, "/", name);
}

ScratchFile::~ScratchFile() {
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

void ScratchFile::Write(absl::string_view content) const {
  const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 ||
      ::write(fd, content.data(), content.size()) != static_cast<ssize_t>(content.size())) {
    std::perror(path_.c_str());
    std::abort();
  }
  ::close(fd);
}

}  // namespace devscope
