# Cross-compiles flotilla for 64-bit Raspberry Pis (Pi 3, 4, 5, Zero 2 W on a
# 64-bit OS: linux/arm64) with Debian's cross compiler and multiarch packages.
# Usage (scripts/cross.sh does all of this):
#   cmake -S . -B build-arm64 -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-aarch64-linux-gnu.cmake
# Needs: g++-aarch64-linux-gnu, `dpkg --add-architecture arm64` and the -dev packages as :arm64
# (they install under /usr/lib/aarch64-linux-gnu and /usr/include), and qemu-user-static,
# through which CMake runs the target's programs (gtest discovery, ctest).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(FLOTILLA_CROSS_TRIPLET aarch64-linux-gnu)
set(FLOTILLA_CROSS_QEMU qemu-aarch64-static)  # runs the target's programs
# The Debian architecture the packages are built for (cmake/Packaging.cmake).
set(FLOTILLA_DEB_ARCH arm64)

include(${CMAKE_CURRENT_LIST_DIR}/toolchain-common.cmake)
