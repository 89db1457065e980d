// `roam image show`: what an image holds — processes, their memory maps
// and fds, sizes — as a table or as one JSON document (docs/CHECKPOINT.md
// lists the fields).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "ckpt/image.h"

namespace roam {

nlohmann::json ImageJson(const Image& image);
std::string ImageTable(const Image& image);

}  // namespace roam
