// The dashboard's page: the files built from web/ (npm, vite) at build time
// by cmake/WebUi.cmake and compiled into roamd, so that a node serves its
// dashboard with nothing installed beside it and nothing fetched at run time.
#pragma once

#include <string_view>

namespace roam {

struct WebAsset {
  std::string_view path;          // "/index.html", "/assets/index-1a2b.js"
  std::string_view content_type;  // "text/html; charset=utf-8"
  std::string_view body;
};

// The file served at `path` ("/" is "/index.html"), or nullptr.
const WebAsset* FindWebAsset(std::string_view path);

}  // namespace roam
