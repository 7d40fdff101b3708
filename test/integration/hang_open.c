/* An LD_PRELOAD shim for the fault tests: open(2) of an entry whose last path component is
 * $DEVSCOPE_TEST_HANG_OPEN never returns, as a call into a hung driver or a file system that does
 * not answer. Lets a test hang a collector of the real binary without changing the binary. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef int (*OpenFn)(const char*, int, ...);
typedef int (*OpenAtFn)(int, const char*, int, ...);

/* The next definition of `name`, looked up on first use (atomically: any thread may be first). */
static void* Real(void** slot, const char* name) {
  void* fn = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
  if (fn == NULL) {
    fn = dlsym(RTLD_NEXT, name);
    __atomic_store_n(slot, fn, __ATOMIC_RELEASE);
  }
  return fn;
}
static void *real_open, *real_open64, *real_openat, *real_openat64;

static void MaybeHang(const char* path) {
  const char* hang_name = getenv("DEVSCOPE_TEST_HANG_OPEN");
  if (hang_name == NULL || *hang_name == '\0' || path == NULL) return;
  const char* slash = strrchr(path, '/');
  if (strcmp(slash == NULL ? path : slash + 1, hang_name) != 0) return;
  for (;;) pause(); /* SIGTERM is blocked in devscope's threads: this never returns */
}

#define MODE_ARG(flags, mode)                           \
  mode_t mode = 0;                                      \
  if ((flags) & (O_CREAT | O_TMPFILE)) {                \
    va_list args;                                       \
    va_start(args, flags);                              \
    mode = (mode_t)va_arg(args, int);                   \
    va_end(args);                                       \
  }

int open(const char* path, int flags, ...) {
  MODE_ARG(flags, mode);
  MaybeHang(path);
  return ((OpenFn)Real(&real_open, "open"))(path, flags, mode);
}

int open64(const char* path, int flags, ...) {
  MODE_ARG(flags, mode);
  MaybeHang(path);
  return ((OpenFn)Real(&real_open64, "open64"))(path, flags, mode);
}

int openat(int dir, const char* path, int flags, ...) {
  MODE_ARG(flags, mode);
  MaybeHang(path);
  return ((OpenAtFn)Real(&real_openat, "openat"))(dir, path, flags, mode);
}

int openat64(int dir, const char* path, int flags, ...) {
  MODE_ARG(flags, mode);
  MaybeHang(path);
  return ((OpenAtFn)Real(&real_openat64, "openat64"))(dir, path, flags, mode);
}
