#include "collectors/devicedir_trust.h"

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/log.h"

namespace devscope {
namespace {

std::string OwnerName(uid_t uid) { return uid == 0 ? "root" : absl::StrCat("uid ", uid); }

absl::Status OpenError(const std::string& path, int err) {
  if (err == ENOENT) return absl::NotFoundError(absl::StrCat(path, ": absent"));
  if (err == ENOTDIR) return absl::FailedPreconditionError(absl::StrCat(path, ": not a directory"));
  return absl::UnavailableError(absl::StrCat(path, ": ", std::strerror(err)));
}

// Whether `path` is `prefix` or below it (both canonical).
bool IsWithin(absl::string_view path, absl::string_view prefix) {
  if (prefix == "/") return true;
  return path == prefix || (absl::StartsWith(path, prefix) && path[prefix.size()] == '/');
}

}  // namespace

absl::StatusOr<uid_t> ResolveOwner(const std::string& owner) {
  // "root" without a lookup: the container image has no /etc/passwd.
  if (owner == "root") return 0;
  uint32_t uid = 0;
  if (absl::SimpleAtoi(owner, &uid) && !owner.empty() && owner[0] != '-' && owner[0] != '+') {
    return static_cast<uid_t>(uid);
  }
  struct passwd entry;
  struct passwd* found = nullptr;
  char buffer[4096];
  if (::getpwnam_r(owner.c_str(), &entry, buffer, sizeof(buffer), &found) != 0 ||
      found == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(QuoteForLog(owner), " is not a user name or a numeric uid"));
  }
  return found->pw_uid;
}

absl::Status CheckOwnerAndMode(const struct stat& st, uid_t owner, absl::string_view path) {
  if (st.st_uid != 0 && st.st_uid != owner) {
    return absl::PermissionDeniedError(absl::StrCat(
        path, ": owned by uid ", st.st_uid, ", not by ", OwnerName(0),
        owner == 0 ? "" : absl::StrCat(" or ", OwnerName(owner)), " (collectors.devicedir.owner)"));
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return absl::PermissionDeniedError(
        absl::StrFormat("%s: writable by group or others (mode %04o)", path, st.st_mode & 07777));
  }
  return absl::OkStatus();
}

absl::StatusOr<CheckedDir> CheckedDir::Open(const std::string& path, uid_t owner) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return OpenError(path, errno);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return OpenError(path, errno);
  if (absl::Status trusted = CheckOwnerAndMode(st, owner, path); !trusted.ok()) return trusted;
  return CheckedDir(std::move(fd), path, owner);
}

absl::StatusOr<CheckedDir> CheckedDir::OpenDir(const std::string& name) const {
  const std::string path = absl::StrCat(path_, "/", name);
  UniqueFd fd(::openat(fd_.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return OpenError(path, errno);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return OpenError(path, errno);
  if (absl::Status trusted = CheckOwnerAndMode(st, owner_, path); !trusted.ok()) return trusted;
  return CheckedDir(std::move(fd), path, owner_);
}

absl::StatusOr<std::string> CheckedDir::ReadFile(const std::string& name, size_t limit) const {
  const std::string path = absl::StrCat(path_, "/", name);
  return ReadSmallFileAt(fd_.get(), name, path, limit, [&](const struct stat& st) {
    return CheckOwnerAndMode(st, owner_, path);
  });
}

absl::StatusOr<std::vector<std::string>> CheckedDir::Names() const {
  // fdopendir takes the descriptor it is given; give it a copy that also reads from the start.
  const int copy = ::openat(fd_.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR* dir = copy < 0 ? nullptr : ::fdopendir(copy);
  if (dir == nullptr) {
    const int err = errno;
    if (copy >= 0) ::close(copy);
    return absl::UnavailableError(absl::StrCat(path_, ": ", std::strerror(err)));
  }
  std::vector<std::string> names;
  errno = 0;
  while (const struct dirent* entry = ::readdir(dir)) {
    const absl::string_view name = entry->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  const int err = errno;
  ::closedir(dir);
  if (err != 0) return absl::UnavailableError(absl::StrCat(path_, ": ", std::strerror(err)));
  std::sort(names.begin(), names.end());
  return names;
}

bool IsCanonicalPath(absl::string_view path) {
  if (path.empty() || path[0] != '/') return false;
  if (path == "/") return true;
  if (path.back() == '/') return false;
  for (absl::string_view part : absl::StrSplit(path.substr(1), '/')) {
    if (part.empty() || part == "." || part == "..") return false;
  }
  return true;
}

absl::Status CheckAllocateHostPaths(const AllocateSpec& spec,
                                    const std::vector<std::string>& mount_prefixes) {
  for (const AllocateSpec::DeviceNode& node : spec.device_nodes) {
    if (!IsCanonicalPath(node.host_path) || !absl::StartsWith(node.host_path, "/dev/")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "device host path ", QuoteForLog(node.host_path), " is not a canonical path under /dev"));
    }
  }
  for (const AllocateSpec::Mount& mount : spec.mounts) {
    if (!IsCanonicalPath(mount.host_path) || mount.host_path == "/") {
      return absl::InvalidArgumentError(absl::StrCat("mount host path ",
                                                     QuoteForLog(mount.host_path),
                                                     " is not a canonical path other than /"));
    }
    if (!mount_prefixes.empty() &&
        std::none_of(mount_prefixes.begin(), mount_prefixes.end(),
                     [&](const std::string& p) { return IsWithin(mount.host_path, p); })) {
      return absl::InvalidArgumentError(
          absl::StrCat("mount host path ", QuoteForLog(mount.host_path),
                       " is not within collectors.devicedir.mount_prefixes"));
    }
  }
  return absl::OkStatus();
}

}  // namespace devscope
