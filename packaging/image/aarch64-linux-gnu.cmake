# CMake toolchain for the arm64 image: Debian 12's cross compiler and its multiarch arm64 libraries
# (/usr/lib/aarch64-linux-gnu, found through CMAKE_LIBRARY_ARCHITECTURE); protoc and grpc_cpp_plugin
# are the build machine's own programs. Used by packaging/image/build-arm64.sh.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(PKG_CONFIG_EXECUTABLE aarch64-linux-gnu-pkg-config CACHE FILEPATH "")
