# Placeholder until web/ exists: a one-page dashboard compiled in.
set(WEBUI_CC ${CMAKE_BINARY_DIR}/webui_assets.cc)
file(WRITE ${WEBUI_CC} [=[
#include "web/assets.h"
namespace roam {
static const WebAsset kIndex{"/index.html", "text/html; charset=utf-8", "<!doctype html><title>roam</title><p>roam dashboard</p>"};
const WebAsset* FindWebAsset(std::string_view path) {
  if (path == "/" || path == kIndex.path) return &kIndex;
  return nullptr;
}
}  // namespace roam
]=])
add_library(roam_webui STATIC ${WEBUI_CC})
target_include_directories(roam_webui PUBLIC ${CMAKE_SOURCE_DIR}/src)
