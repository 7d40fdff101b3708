// Small-file reads for sysfs attributes and devicedir files: one bounded read each, reading kept
// apart from parsing (as prometheus/procfs does).
#ifndef DEVSCOPE_COMMON_FILES_H_
#define DEVSCOPE_COMMON_FILES_H_

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace devscope {

// Reads at most `limit` bytes of `path`. NotFound when the file is absent; OutOfRange when it is
// larger than `limit` (a sysfs attribute or devicedir file is never that large).
absl::StatusOr<std::string> ReadSmallFile(const std::string& path, size_t limit = 64 * 1024);

// The file's content with surrounding whitespace removed; nullopt when it is absent or unreadable.
// For optional attributes, which are "absent", never zero.
std::optional<std::string> ReadTrimmed(const std::string& path);

// The names in a directory, sorted; empty when it does not exist.
std::vector<std::string> ListDirectory(const std::string& path);

// The last component of a symlink's target (e.g. device/driver -> .../i915 gives "i915").
std::optional<std::string> SymlinkBasename(const std::string& path);

}  // namespace devscope

#endif  // DEVSCOPE_COMMON_FILES_H_
