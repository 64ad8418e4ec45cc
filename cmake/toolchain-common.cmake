# What both toolchain files share; each sets CMAKE_SYSTEM_NAME,
# CMAKE_SYSTEM_PROCESSOR, FLOTILLA_CROSS_TRIPLET, FLOTILLA_CROSS_QEMU (the
# qemu-user binary) and FLOTILLA_DEB_ARCH, then includes this file.
set(CMAKE_C_COMPILER ${FLOTILLA_CROSS_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${FLOTILLA_CROSS_TRIPLET}-g++)
set(CMAKE_STRIP ${FLOTILLA_CROSS_TRIPLET}-strip CACHE FILEPATH "")

# Multiarch: the target's libraries live in /usr/lib/<triplet> of the host
# itself, its CMake package files in /usr/lib/<triplet>/cmake, and
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
find_program(FLOTILLA_CROSS_EMULATOR ${FLOTILLA_CROSS_QEMU} REQUIRED)
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
