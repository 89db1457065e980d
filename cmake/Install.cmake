# `make install` and `make package` (docs/INSTALL.md). Included by the top
# CMakeLists.txt once the roam and roamd targets exist.
#
# What is installed, under the prefix (default /usr) and DESTDIR:
#   bin/roam, sbin/roamd
#   share/man/man1/roam.1.gz, man8/roamd.8.gz, man5/roamd.conf.5.gz
#     (made here from docs/man/*.md by pandoc, at build time: target `man`)
#   share/bash-completion/completions/roam
#   share/doc/roam/: README.md, docs/*.md, roamd.conf.example, examples/
# and, whatever the prefix, where Debian's tools look for them:
#   /etc/roam/roamd.conf (etc/roamd.conf.example; `make install` never
#     overwrites one that is there; the package marks it a conffile)
#   /lib/systemd/system/roamd.service
# The cluster key is never installed: the package's postinst makes one
# (packaging/postinst); after `make install`, docs/INSTALL.md says how.
#
# `make package` (CPack, DEB): build/roam_VERSION_ARCH.deb, its Depends
# worked out by dpkg-shlibdeps from what roam and roamd link, with the
# maintainer scripts of packaging/.

# /usr, as a package would: the unit names /usr/sbin/roamd. A build tree
# configured before this file existed holds CMake's /usr/local: moved once.
# A prefix given with -DCMAKE_INSTALL_PREFIX is kept.
if(CMAKE_INSTALL_PREFIX_INITIALIZED_TO_DEFAULT
   OR (NOT DEFINED ROAM_INSTALL_PREFIX_CHOSEN AND CMAKE_INSTALL_PREFIX STREQUAL "/usr/local"))
  set(CMAKE_INSTALL_PREFIX /usr CACHE PATH "Install prefix (make install)" FORCE)
endif()
set(ROAM_INSTALL_PREFIX_CHOSEN ON CACHE INTERNAL "")

# ---- man pages -----------------------------------------------------------------
# One source each (docs/man/NAME.SECTION.md) -> build/man/NAME.SECTION (for
# `man -l`) and NAME.SECTION.gz (installed, as Debian wants them).
find_program(PANDOC_EXECUTABLE pandoc)
set(ROAM_MAN_PAGES roam.1 roamd.8 roamd.conf.5)
set(ROAM_MAN_DIR ${CMAKE_BINARY_DIR}/man)
if(PANDOC_EXECUTABLE)
  set(man_outputs)
  foreach(page ${ROAM_MAN_PAGES})
    set(src ${CMAKE_SOURCE_DIR}/docs/man/${page}.md)
    add_custom_command(
      OUTPUT ${ROAM_MAN_DIR}/${page} ${ROAM_MAN_DIR}/${page}.gz
      COMMAND ${CMAKE_COMMAND} -E make_directory ${ROAM_MAN_DIR}
      COMMAND ${PANDOC_EXECUTABLE} -s -f markdown -t man -M "footer=roam ${PROJECT_VERSION}" -o ${ROAM_MAN_DIR}/${page}
              ${src}
      COMMAND gzip -9 -n -c ${ROAM_MAN_DIR}/${page} > ${ROAM_MAN_DIR}/${page}.gz
      DEPENDS ${src}
      COMMENT "man page ${page}"
      VERBATIM)
    list(APPEND man_outputs ${ROAM_MAN_DIR}/${page}.gz)
    string(REGEX MATCH "[0-9]$" section ${page})
    install(FILES ${ROAM_MAN_DIR}/${page}.gz DESTINATION share/man/man${section})
  endforeach()
  add_custom_target(man ALL DEPENDS ${man_outputs})
else()
  message(WARNING "pandoc not found: no man pages (scripts/install-deps.sh installs it)")
endif()

# ---- files ---------------------------------------------------------------------
install(TARGETS roam RUNTIME DESTINATION bin)
install(TARGETS roamd RUNTIME DESTINATION sbin)
install(FILES ${CMAKE_SOURCE_DIR}/packaging/roam.bash-completion
        DESTINATION share/bash-completion/completions RENAME roam)
install(FILES ${CMAKE_SOURCE_DIR}/packaging/roamd.service DESTINATION /lib/systemd/system)
install(FILES ${CMAKE_SOURCE_DIR}/README.md ${CMAKE_SOURCE_DIR}/etc/roamd.conf.example DESTINATION share/doc/roam)
file(GLOB ROAM_DOCS ${CMAKE_SOURCE_DIR}/docs/*.md)
install(FILES ${ROAM_DOCS} DESTINATION share/doc/roam)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/etc/owner-watch DESTINATION share/doc/roam/examples USE_SOURCE_PERMISSIONS)
# The configuration: an administrator's own is kept (a package upgrade
# handles it as a conffile instead). file(INSTALL) adds DESTDIR itself.
install(CODE "
  set(conf \"\$ENV{DESTDIR}/etc/roam/roamd.conf\")
  if(EXISTS \"\${conf}\")
    message(STATUS \"Kept: \${conf}\")
  else()
    file(INSTALL \"${CMAKE_SOURCE_DIR}/etc/roamd.conf.example\" DESTINATION /etc/roam
         RENAME roamd.conf PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
  endif()")

# ---- the Debian package -----------------------------------------------------------
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME roam)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "roam maintainers <roam@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "run programs on a cluster of Linux machines as if on one")
# The body; CPack puts the summary above it as the first line.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "roam turns a room of ordinary Linux machines into one computer: programs
started with `roam run` spread over the idle machines and move while they
run, in user space on a stock kernel, the way openMosix did. This package
holds roamd, the node daemon, with its systemd unit, and roam, the command
line.")
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
# Without their debug sections: 180 MB installed otherwise.
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# Loaded with dlopen when a TCP connection is held still (src/ckpt/net_lock.cc),
# so shlibdeps cannot see it; what shlibdeps finds is added after it.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libnftables1")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "bash-completion")
# Absolute destinations (/etc, /lib/systemd) go under the staging root.
set(CPACK_SET_DESTDIR ON)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_OUTPUT_FILE_PREFIX ${CMAKE_BINARY_DIR})
file(WRITE ${CMAKE_BINARY_DIR}/packaging/conffiles "/etc/roam/roamd.conf\n")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_BINARY_DIR}/packaging/conffiles
    ${CMAKE_SOURCE_DIR}/packaging/postinst
    ${CMAKE_SOURCE_DIR}/packaging/prerm
    ${CMAKE_SOURCE_DIR}/packaging/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
