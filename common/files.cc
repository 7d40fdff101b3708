#include "common/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace devscope {

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.release();
  }
  return *this;
}

absl::StatusOr<std::string> ReadBoundedFromFd(int fd, const std::string& path, size_t limit) {
  // Sized to the file, not to the limit: a pass reads thousands of small files and the limit of
  // some (metrics.prom) is large.
  std::string content;
  char buffer[8192];
  while (content.size() <= limit) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::UnavailableError(absl::StrCat(path, ": ", std::strerror(errno)));
    }
    if (n == 0) break;
    content.append(buffer, static_cast<size_t>(n));
  }
  if (content.size() > limit) {
    return absl::OutOfRangeError(absl::StrCat(path, ": larger than ", limit, " bytes"));
  }
  return content;
}

absl::StatusOr<std::string> ReadSmallFile(const std::string& path, size_t limit) {
  return ReadSmallFileAt(AT_FDCWD, path, path, limit,
                         [](const struct stat&) { return absl::OkStatus(); });
}

absl::StatusOr<std::string> ReadSmallFileAt(
    int dir_fd, const std::string& name, const std::string& path, size_t limit,
    absl::FunctionRef<absl::Status(const struct stat&)> check) {
  const UniqueFd fd(::openat(dir_fd, name.c_str(), kSmallFileOpenFlags));
  if (!fd.valid()) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) return absl::NotFoundError(absl::StrCat(path, ": absent"));
    return absl::UnavailableError(absl::StrCat(path, ": ", std::strerror(err)));
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) {
    return absl::UnavailableError(absl::StrCat(path, ": ", std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": not a regular file"));
  }
  if (absl::Status checked = check(st); !checked.ok()) return checked;
  return ReadBoundedFromFd(fd.get(), path, limit);
}

std::optional<std::string> ReadTrimmed(const std::string& path) {
  auto content = ReadSmallFile(path);
  if (!content.ok()) return std::nullopt;
  return std::string(absl::StripAsciiWhitespace(*content));
}

std::vector<std::string> ListDirectory(const std::string& path) {
  std::vector<std::string> names;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
    names.push_back(it->path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::optional<std::string> SymlinkBasename(const std::string& path) {
  std::error_code ec;
  const std::filesystem::path target = std::filesystem::read_symlink(path, ec);
  if (ec) return std::nullopt;
  return target.filename().string();
}

}  // namespace devscope
