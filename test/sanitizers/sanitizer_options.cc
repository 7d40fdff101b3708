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
