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
# The Debian architecture the packages are built for (cmake/Packaging.cmake).
set(FLOTILLA_DEB_ARCH arm64)

set(CMAKE_C_COMPILER ${FLOTILLA_CROSS_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${FLOTILLA_CROSS_TRIPLET}-g++)
set(CMAKE_STRIP ${FLOTILLA_CROSS_TRIPLET}-strip CACHE FILEPATH "")

# Multiarch: the target's libraries live in /usr/lib/aarch64-linux-gnu of the
# host itself, its CMake package files in /usr/lib/aarch64-linux-gnu/cmake, and
# arch-independent ones (nlohmann_json, CLI11) in /usr/share. Search only
# there for libraries, headers and packages; programs (ccache) come from the
# host.
set(CMAKE_LIBRARY_ARCHITECTURE ${FLOTILLA_CROSS_TRIPLET})
set(CMAKE_FIND_ROOT_PATH /)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# pkg-config must read the target's .pc files, never the host's.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/${FLOTILLA_CROSS_TRIPLET}/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
unset(ENV{PKG_CONFIG_SYSROOT_DIR})

# Target programs run under qemu-user; the dynamic loader and libraries are
# the multiarch ones installed on the host, so qemu needs no -L prefix.
find_program(FLOTILLA_CROSS_EMULATOR qemu-aarch64-static REQUIRED)
set(CMAKE_CROSSCOMPILING_EMULATOR ${FLOTILLA_CROSS_EMULATOR})

# Alternatively, -DFLOTILLA_CROSS_SYSROOT=DIR: the target's libraries come
# from a root filesystem of that architecture (debootstrap + its -dev
# packages) instead of the host's multiarch packages. scripts/cross.sh
# falls back to it when the host cannot install the :arch packages (their
# Multi-Arch: same versions must equal the host's, and a mirror may lag).
# The compiler keeps its own C++ and libc headers; the rest is read in DIR.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES FLOTILLA_CROSS_SYSROOT)
if(FLOTILLA_CROSS_SYSROOT)
  set(CMAKE_SYSROOT ${FLOTILLA_CROSS_SYSROOT})
  set(CMAKE_FIND_ROOT_PATH ${FLOTILLA_CROSS_SYSROOT})
  set(ENV{PKG_CONFIG_SYSROOT_DIR} ${FLOTILLA_CROSS_SYSROOT})
  set(ENV{PKG_CONFIG_LIBDIR} "${FLOTILLA_CROSS_SYSROOT}/usr/lib/${FLOTILLA_CROSS_TRIPLET}/pkgconfig:${FLOTILLA_CROSS_SYSROOT}/usr/share/pkgconfig")
  set(CMAKE_CROSSCOMPILING_EMULATOR ${FLOTILLA_CROSS_EMULATOR} -L ${FLOTILLA_CROSS_SYSROOT})
endif()
