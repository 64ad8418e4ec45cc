# CPack: Debian packages flotilla-node and flotilla-tracker for the
# architecture being built (amd64 natively, arm64/armhf with the toolchain
# files, which set FLOTILLA_DEB_ARCH). `cpack -G DEB` in a build directory
# writes flotilla-node_<version>_<arch>.deb and flotilla-tracker_...deb;
# scripts/cross.sh builds all three architectures (docs/pi.md).
#
# Depends: computed by dpkg-shlibdeps from the binaries against the target
# architecture's libraries (multiarch: their :arch packages on this host).
# A build against a sysroot passes what dpkg-shlibdeps said inside that
# root instead: -DFLOTILLA_DEB_NODE_DEPENDS=... -DFLOTILLA_DEB_TRACKER_DEPENDS=...
if(NOT FLOTILLA_DEB_ARCH)
  execute_process(COMMAND dpkg --print-architecture OUTPUT_VARIABLE FLOTILLA_DEB_ARCH
                  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME flotilla)
set(CPACK_PACKAGE_VENDOR flotilla)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "flotilla maintainers <flotilla@localhost>")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL node tracker)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE ${FLOTILLA_DEB_ARCH})
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS OFF)

# The maintainer scripts, written into the build directory. They enable
# and start nothing: the node needs /etc/flotilla/root.json and an enrolment
# token first (README, "Install on a Raspberry Pi").
set(FLOTILLA_PACKAGING_DIR ${PROJECT_BINARY_DIR}/packaging)
file(WRITE ${FLOTILLA_PACKAGING_DIR}/node/conffiles "/etc/flotilla/node.json\n")
# configure: the data directory exists, root-only (as StateDirectoryMode=);
# systemd learns the new unit; a node already running is restarted on the
# new binary (its apps keep running: KillMode=process, re-adopted).
file(WRITE ${FLOTILLA_PACKAGING_DIR}/node/postinst [=[#!/bin/sh
set -e
if [ "$1" = configure ]; then
  install -d -m 0700 -o root -g root /var/lib/flotilla
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
    if [ -n "$2" ]; then
      systemctl try-restart flotilla-node.service >/dev/null 2>&1 || true
    fi
  fi
fi
exit 0
]=])
# remove (not upgrade): stop the daemon; its apps' monitors keep running
# until the operator stops them (`flotilla-node app stop` before removal).
file(WRITE ${FLOTILLA_PACKAGING_DIR}/node/prerm [=[#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
  systemctl disable --now flotilla-node.service >/dev/null 2>&1 || true
  systemctl stop flotilla-node-agent-check.timer >/dev/null 2>&1 || true
fi
exit 0
]=])
# purge: the data directory goes too, unless an app's root filesystem is
# still mounted below it (then it says so and keeps it).
file(WRITE ${FLOTILLA_PACKAGING_DIR}/node/postrm [=[#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
fi
if [ "$1" = purge ] && [ -d /var/lib/flotilla ]; then
  if grep -q ' /var/lib/flotilla/' /proc/mounts 2>/dev/null; then
    echo "flotilla-node: /var/lib/flotilla kept: an app is still mounted below it" >&2
  else
    rm -rf /var/lib/flotilla
  fi
fi
exit 0
]=])

# flotilla-node: the device daemon, its container monitor, the unit, the
# example configuration (a conffile) and the data directory. postinst
# creates the data directory and reloads systemd; it enables and starts
# nothing (the node needs root.json and an enrolment token first).
set(CPACK_DEBIAN_NODE_PACKAGE_NAME flotilla-node)
set(CPACK_DEBIAN_NODE_DESCRIPTION
    "flotilla device node: signed container releases fetched peer-to-peer\n\
 Verifies TUF-signed release metadata, fetches layers from LAN peers and the\n\
 origin with BitTorrent, rebuilds them from deltas, and runs the apps in its\n\
 built-in container runtime with a health-gated switch and rollback.")
set(CPACK_DEBIAN_NODE_PACKAGE_CONTROL_EXTRA
    ${FLOTILLA_PACKAGING_DIR}/node/conffiles
    ${FLOTILLA_PACKAGING_DIR}/node/postinst
    ${FLOTILLA_PACKAGING_DIR}/node/prerm
    ${FLOTILLA_PACKAGING_DIR}/node/postrm)

# flotilla-tracker: the fleet's server (signing, deltas, tracker, origin).
set(CPACK_DEBIAN_TRACKER_PACKAGE_NAME flotilla-tracker)
set(CPACK_DEBIAN_TRACKER_DESCRIPTION
    "flotilla tracker: signs releases and serves a fleet of devices\n\
 Signs TUF release metadata, computes deltas, and serves the BitTorrent\n\
 tracker, the HTTP origin, enrolment, device reports and the dashboard.")

foreach(component NODE TRACKER)
  if(DEFINED FLOTILLA_DEB_${component}_DEPENDS)
    set(CPACK_DEBIAN_${component}_PACKAGE_SHLIBDEPS OFF)
    set(CPACK_DEBIAN_${component}_PACKAGE_DEPENDS "${FLOTILLA_DEB_${component}_DEPENDS}")
  else()
    set(CPACK_DEBIAN_${component}_PACKAGE_SHLIBDEPS ON)
  endif()
endforeach()

include(CPack)
