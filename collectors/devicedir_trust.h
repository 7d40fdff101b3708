// What the devicedir collector trusts (docs/security.md, "The devicedir"). A devicedir device is
// advertised to the kubelet with the device nodes and mounts its `allocate` file names, so whoever
// can write the devicedir decides what pods get from the host. As sshd's StrictModes does with
// authorized_keys: the devicedir, every device directory and every file devscope reads from one
// must be owned by root (or the configured owner) and not writable by group or others, and the
// host paths of `allocate` must be canonical and where devices and shared files belong.
//
// Everything is checked on the open descriptor that is then read (fstat, openat), so nothing can
// be swapped in between the check and the read.
#ifndef DEVSCOPE_COLLECTORS_DEVICEDIR_TRUST_H_
#define DEVSCOPE_COLLECTORS_DEVICEDIR_TRUST_H_

#include <sys/stat.h>
#include <sys/types.h>

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "collectors/collector.h"
#include "common/files.h"

namespace devscope {

// The user that may own the devicedir besides root: "root" (only root), a user name, or a
// numeric uid. InvalidArgument when it names no user.
absl::StatusOr<uid_t> ResolveOwner(const std::string& owner);

// OK when `st` (of `path`) is owned by root or `owner` and not writable by group or others;
// otherwise PermissionDenied saying which rule it breaks.
absl::Status CheckOwnerAndMode(const struct stat& st, uid_t owner, absl::string_view path);

// A directory of the devicedir, open and checked. Files and directories opened through it are
// checked through their own descriptors.
class CheckedDir {
 public:
  // Opens `path` (following symlinks: what is checked is what is read). NotFound when absent;
  // PermissionDenied when it breaks the ownership rule; Unavailable otherwise.
  static absl::StatusOr<CheckedDir> Open(const std::string& path, uid_t owner);

  // The directory `name` in this one, checked as above; FailedPrecondition when it is not one.
  absl::StatusOr<CheckedDir> OpenDir(const std::string& name) const;
  // At most `limit` bytes of the file `name` in this one: NotFound when absent; PermissionDenied
  // when it breaks the ownership rule; FailedPrecondition when it is not a regular file (a FIFO or
  // device is never opened for reading in a way that blocks); OutOfRange when larger; Unavailable.
  absl::StatusOr<std::string> ReadFile(const std::string& name, size_t limit) const;
  // The names in the directory (without . and ..), sorted; Unavailable when it cannot be read.
  absl::StatusOr<std::vector<std::string>> Names() const;

  const std::string& path() const { return path_; }

 private:
  CheckedDir(UniqueFd fd, std::string path, uid_t owner)
      : fd_(std::move(fd)), path_(std::move(path)), owner_(owner) {}

  UniqueFd fd_;
  std::string path_;
  uid_t owner_;
};

// Whether `path` is absolute and canonical: no empty, "." or ".." component and no trailing "/".
bool IsCanonicalPath(absl::string_view path);

// What an `allocate` file may ask of the host. Device nodes: canonical and under /dev (the host's
// path, whatever --path.devfs says). Mounts: canonical, never "/", and, when `mount_prefixes` is
// not empty, equal to or under one of them. InvalidArgument naming the first path refused.
absl::Status CheckAllocateHostPaths(const AllocateSpec& spec,
                                    const std::vector<std::string>& mount_prefixes);

}  // namespace devscope

#endif  // DEVSCOPE_COLLECTORS_DEVICEDIR_TRUST_H_
