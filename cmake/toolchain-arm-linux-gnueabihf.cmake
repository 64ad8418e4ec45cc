# Cross-compiles flotilla for 32-bit Raspberry Pis (32-bit Raspberry Pi OS:
# linux/arm/v7) with Debian's cross compiler and multiarch packages. Debian's
# armhf is ARMv7-A + VFPv3-D16 (Thumb-2): every Pi from the Pi 2 on, not the
# ARMv6 Pi 1 / Zero. Large-file support (_FILE_OFFSET_BITS=64) is set by the
# top-level CMakeLists.txt for every build.
# Usage (scripts/cross.sh does all of this):
#   cmake -S . -B build-armhf -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-arm-linux-gnueabihf.cmake
# Needs: g++-arm-linux-gnueabihf, `dpkg --add-architecture armhf` and the -dev packages as :armhf
# (they install under /usr/lib/arm-linux-gnueabihf and /usr/include), and qemu-user-static,
# through which CMake runs the target's programs (gtest discovery, ctest).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(FLOTILLA_CROSS_TRIPLET arm-linux-gnueabihf)
set(FLOTILLA_CROSS_QEMU qemu-arm-static)  # runs the target's programs
# The Debian architecture the packages are built for (cmake/Packaging.cmake).
set(FLOTILLA_DEB_ARCH armhf)

include(${CMAKE_CURRENT_LIST_DIR}/toolchain-common.cmake)

# GCC's -Wpsabi note ("parameter passing ... changed in GCC 7.1") fires on
# every std::map iterator passed by value on 32-bit ARM: it warns about
# linking with code from GCC 6 and older, which nothing here is.
set(CMAKE_CXX_FLAGS_INIT "-Wno-psabi")
