// Small-file reads for sysfs attributes and devicedir files: one bounded read each, reading kept
// apart from parsing (as prometheus/procfs does).
#ifndef DEVSCOPE_COMMON_FILES_H_
#define DEVSCOPE_COMMON_FILES_H_

#include <fcntl.h>
#include <sys/stat.h>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace devscope {

// Reads at most `limit` bytes of `path`. NotFound when the file is absent; OutOfRange when it is
// larger than `limit` (a sysfs attribute or devicedir file is never that large); FailedPrecondition
// when it is not a regular file. It is opened without blocking, so a FIFO or a device node put
// where a file is expected cannot hang the reader.
absl::StatusOr<std::string> ReadSmallFile(const std::string& path, size_t limit = 64 * 1024);

// ReadSmallFile of `name` in the directory open as `dir_fd` (AT_FDCWD: `name` is a path), named
// `path` in errors. `check` vets the open file's stat once it is known to be a regular file, before
// anything is read; what it returns is the answer when not OK.
absl::StatusOr<std::string> ReadSmallFileAt(
    int dir_fd, const std::string& name, const std::string& path, size_t limit,
    absl::FunctionRef<absl::Status(const struct stat&)> check);

// The flags every small-file read opens with: read-only, close-on-exec, no controlling terminal,
// and non-blocking (open(2) of a FIFO without a writer would wait for one).
inline constexpr int kSmallFileOpenFlags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;

// Reads at most `limit` bytes from the open regular file `fd` (which it does not close); `path`
// names it in errors. OutOfRange when it holds more.
absl::StatusOr<std::string> ReadBoundedFromFd(int fd, const std::string& path, size_t limit);

// A file descriptor, closed when the holder goes.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd();
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_ = -1;
};

// The file's content with surrounding whitespace removed; nullopt when it is absent or unreadable.
// For optional attributes, which are "absent", never zero.
std::optional<std::string> ReadTrimmed(const std::string& path);

// The names in a directory, sorted; empty when it does not exist.
std::vector<std::string> ListDirectory(const std::string& path);

// The last component of a symlink's target (e.g. device/driver -> .../i915 gives "i915").
std::optional<std::string> SymlinkBasename(const std::string& path);

}  // namespace devscope

#endif  // DEVSCOPE_COMMON_FILES_H_
