# Installs the configuration (run by `cmake --install`; see the install rules at the end of the
# top-level CMakeLists.txt). It runs at install time because only then is the prefix known:
# `cmake --install build --prefix /usr` puts the configuration in /etc/fordeler, as
# GNUInstallDirs does for the /usr prefix and as the systemd unit expects; any other prefix gets
# <prefix>/etc/fordeler; an absolute CMAKE_INSTALL_SYSCONFDIR is used as it is. DESTDIR is honoured.
#
# An existing fordeler.toml is never replaced (it is the operator's); the shipped default stays
# readable as share/doc/fordeler/fordeler.toml.example. conf.d/flis-data-areas.toml is fordeler's
# own and is replaced on upgrade.
#
# REQUIRES: FORDELER_SOURCE_DIR and FORDELER_SYSCONFDIR, set by the install(CODE) before it.
if(IS_ABSOLUTE "${FORDELER_SYSCONFDIR}")
  set(fordeler_etc "${FORDELER_SYSCONFDIR}/fordeler")
elseif(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(fordeler_etc "/etc/fordeler")
else()
  set(fordeler_etc "${CMAKE_INSTALL_PREFIX}/${FORDELER_SYSCONFDIR}/fordeler")
endif()

file(INSTALL DESTINATION "${fordeler_etc}/conf.d" TYPE FILE
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
     FILES "${FORDELER_SOURCE_DIR}/conf.d/flis-data-areas.toml")

if(EXISTS "$ENV{DESTDIR}${fordeler_etc}/fordeler.toml")
  message(STATUS "Keeping: $ENV{DESTDIR}${fordeler_etc}/fordeler.toml (the shipped default is "
                 "in the documentation folder as fordeler.toml.example)")
else()
  file(INSTALL DESTINATION "${fordeler_etc}" TYPE FILE RENAME fordeler.toml
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
       FILES "${FORDELER_SOURCE_DIR}/config/fordeler.toml.example")
endif()

# The host keys' folder; systemd-tmpfiles (fordeler.tmpfiles) gives it to group fordeler.
if(NOT EXISTS "$ENV{DESTDIR}${fordeler_etc}/keys")
  message(STATUS "Installing: $ENV{DESTDIR}${fordeler_etc}/keys/")
  file(MAKE_DIRECTORY "$ENV{DESTDIR}${fordeler_etc}/keys")
  file(CHMOD "$ENV{DESTDIR}${fordeler_etc}/keys" DIRECTORY_PERMISSIONS
       OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE)
endif()
