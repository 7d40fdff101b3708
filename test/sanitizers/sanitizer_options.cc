// The sanitizers' default options, linked into every executable of a sanitizer build (the tests,
// the devscope binary they start, the fuzz targets), so that a run by hand behaves as ctest's.
// ASAN_OPTIONS and friends in the environment still override them.

// llvm-14's symbolizer puts file:line in reports; /usr/bin/llvm-symbolizer exists only with the
// unversioned llvm package.
#define DEVSCOPE_SYMBOLIZER "external_symbolizer_path=/usr/lib/llvm-14/bin/llvm-symbolizer"

extern "C" const char* __asan_default_options() {
  return DEVSCOPE_SYMBOLIZER
      ":detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1";
}

extern "C" const char* __ubsan_default_options() {
  return DEVSCOPE_SYMBOLIZER ":print_stacktrace=1";
}

extern "C" const char* __tsan_default_options() {
  return DEVSCOPE_SYMBOLIZER ":second_deadlock_stack=1";
}

// Debian's gRPC is not built with TSan: its locks and atomics are invisible, so every hand-over
// through gRPC (a handler's object passed from a completion-queue thread to another) looks like a
// race. A report with a gRPC frame on either stack is suppressed. The price: a real race between a
// gRPC handler and devscope's own threads is hidden too; the ASan build and the handlers'
// ABSL_GUARDED_BY annotations (checked by -Wthread-safety) cover that ground instead.
extern "C" const char* __tsan_default_suppressions() {
  return "race:libgrpc\n"
         "race:libgpr\n"
         "race:libgrpc++\n"
         "deadlock:libgrpc\n"
         // absl::Mutex's deadlock-detection graph and its wait lists, inside Debian's
         // uninstrumented libabsl_synchronization (tsan_absl_mutex.cc tells TSan of the locks
         // themselves, not of these internals).
         "race:libabsl_graphcycles_internal\n"
         "race:libabsl_synchronization\n";
}
