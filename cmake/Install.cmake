# install() rules: what `cmake --install` and the .deb packages put where
# (docs/pi.md, "Packages"). Two components, one per package:
#   node:    /usr/bin/flotilla-node (the static front end, which runs `app`
#            itself and execs flotilla-node-full for everything else),
#            /usr/bin/flotilla-node-full and /usr/bin/flotilla-monitor (both
#            found beside the front end: node/front_main.cpp,
#            runtime::DefaultMonitorPath), the systemd unit, a default
#            /etc/flotilla/node.json, /var/lib/flotilla
#   tracker: /usr/bin/flotilla-tracker
# The unit and the configuration go to fixed system paths whatever the
# prefix: the unit names /usr/bin/flotilla-node and /etc/flotilla/node.json.
include(GNUInstallDirs)

install(TARGETS flotilla-node flotilla-node-full flotilla-monitor
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT node)
install(TARGETS flotilla-tracker
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT tracker)

# Packaged units belong in /lib/systemd/system (Debian 12); an operator's
# own copy in /etc/systemd/system or a drop-in overrides it.
install(FILES ${PROJECT_SOURCE_DIR}/node/systemd/flotilla-node.service
              ${PROJECT_SOURCE_DIR}/node/systemd/flotilla-node-agent-check.service
              ${PROJECT_SOURCE_DIR}/node/systemd/flotilla-node-agent-check.timer
        DESTINATION /lib/systemd/system COMPONENT node)
# The example configuration: a conffile (cmake/Packaging.cmake), so an
# operator's edits survive upgrades. Root-only: it names the token file.
install(FILES ${PROJECT_SOURCE_DIR}/node/systemd/node.json
        DESTINATION /etc/flotilla COMPONENT node
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ)
# The data directory (keys, credentials, store): root-only, as the unit's
# StateDirectoryMode=0700 makes it.
install(DIRECTORY DESTINATION /var/lib/flotilla COMPONENT node
        DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE)
