# The dashboard page (web/, docs/DASHBOARD.md) compiled into roamd: at build
# time web/ is copied into the build tree, `npm ci` installs what its lock
# file pins (into ${CMAKE_BINARY_DIR}/webui/node_modules, so that build trees
# never share one), vite builds it into ${CMAKE_BINARY_DIR}/webui/dist, and
# web/embed_assets.py turns every built file into a string literal behind
# src/web/assets.h's FindWebAsset, in the static library roam_webui.
# Nothing is written into the source tree; the page is rebuilt only when a
# file under web/ changes, and npm ci runs again only when the lock does.
find_program(NPM_EXECUTABLE npm)
find_program(NODE_EXECUTABLE node)
if(NOT NPM_EXECUTABLE OR NOT NODE_EXECUTABLE)
  message(FATAL_ERROR "the dashboard is built with Node.js and npm (scripts/install-deps.sh)")
endif()
find_package(Python3 REQUIRED COMPONENTS Interpreter)

set(WEBUI_SRC ${CMAKE_SOURCE_DIR}/web)
set(WEBUI_WORK ${CMAKE_BINARY_DIR}/webui)
set(WEBUI_DIST ${WEBUI_WORK}/dist)
set(WEBUI_CC ${WEBUI_WORK}/webui_assets.cc)
set(WEBUI_NPM_STAMP ${WEBUI_WORK}/npm-ci.stamp)
file(MAKE_DIRECTORY ${WEBUI_WORK})  # the commands' working directory

# The page's own files (the lock file and the generator are listed apart).
file(GLOB_RECURSE WEBUI_INPUTS CONFIGURE_DEPENDS ${WEBUI_SRC}/src/*)
list(APPEND WEBUI_INPUTS ${WEBUI_SRC}/index.html ${WEBUI_SRC}/vite.config.js)

# npm ci wipes and refills node_modules: only when the dependencies change.
# --prefer-offline: npm's cache is enough when it holds every package.
add_custom_command(OUTPUT ${WEBUI_NPM_STAMP}
  COMMAND ${CMAKE_COMMAND} -E copy_if_different
          ${WEBUI_SRC}/package.json ${WEBUI_SRC}/package-lock.json ${WEBUI_WORK}/
  COMMAND ${NPM_EXECUTABLE} ci --prefer-offline --no-audit --no-fund --loglevel=error
  COMMAND ${CMAKE_COMMAND} -E touch ${WEBUI_NPM_STAMP}
  WORKING_DIRECTORY ${WEBUI_WORK}
  DEPENDS ${WEBUI_SRC}/package.json ${WEBUI_SRC}/package-lock.json
  COMMENT "Dashboard: npm ci (web/package-lock.json)"
  VERBATIM)

# A fresh copy of the sources each time, so that a file removed from web/src
# does not linger; vite runs from node_modules/.bin without npm's wrapper.
add_custom_command(OUTPUT ${WEBUI_CC}
  COMMAND ${CMAKE_COMMAND} -E rm -rf ${WEBUI_WORK}/src
  COMMAND ${CMAKE_COMMAND} -E copy_directory ${WEBUI_SRC}/src ${WEBUI_WORK}/src
  COMMAND ${CMAKE_COMMAND} -E copy_if_different
          ${WEBUI_SRC}/index.html ${WEBUI_SRC}/vite.config.js ${WEBUI_WORK}/
  COMMAND ${CMAKE_COMMAND} -E env ROAM_WEBUI_OUT=${WEBUI_DIST}
          ${NODE_EXECUTABLE} ${WEBUI_WORK}/node_modules/vite/bin/vite.js build --logLevel warn
  COMMAND ${Python3_EXECUTABLE} ${WEBUI_SRC}/embed_assets.py ${WEBUI_DIST} ${WEBUI_CC}
  WORKING_DIRECTORY ${WEBUI_WORK}
  DEPENDS ${WEBUI_NPM_STAMP} ${WEBUI_INPUTS} ${WEBUI_SRC}/embed_assets.py
  COMMENT "Dashboard: vite build and embed into roam_webui"
  VERBATIM)

add_library(roam_webui STATIC ${WEBUI_CC})
target_include_directories(roam_webui PUBLIC ${CMAKE_SOURCE_DIR}/src)
