#include "node/image_dir.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>

namespace roam {

Result<std::vector<std::string>> ListImageFiles(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return Status::Errno("open " + dir);
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (IsImageFileName(name)) names.push_back(name);
  }
  closedir(d);
  std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
    bool ia = a == "inventory.img", ib = b == "inventory.img";
    return ia != ib ? ib : a < b;
  });
  return names;
}

bool IsImageFileName(const std::string& name) {
  if (name.size() < 5 || name.size() > 128 || name[0] == '.') return false;
  if (name.compare(name.size() - 4, 4, ".img") != 0) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'; });
}

void RemoveImageDir(const std::string& dir) {
  Result<std::vector<std::string>> names = ListImageFiles(dir);
  if (names.ok()) {
    for (const std::string& n : *names) unlink((dir + "/" + n).c_str());
  }
  rmdir(dir.c_str());
}

}  // namespace roam
