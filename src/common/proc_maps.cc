#include "common/proc_maps.h"
#include "common/proc_text.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace roam {
namespace {

// The next space-terminated word of *rest, which loses it and the space.
// Empty when there is no space.
std::string_view TakeWord(std::string_view* rest) {
  size_t space = rest->find(' ');
  if (space == std::string_view::npos) return {};
  std::string_view word = rest->substr(0, space);
  rest->remove_prefix(space + 1);
  return word;
}

// "smaps line 12: bad inode: '...'"
Status LineError(const char* file, size_t line_no, const std::string& what, std::string_view line) {
  std::string shown(line.substr(0, 120));
  return Status::Error(std::string(file) + " line " + std::to_string(line_no) + ": " + what + ": '" + shown + "'");
}

// "START-END PERMS OFFSET MAJ:MIN INODE [PATH]", fields hex but the inode.
// The kernel pads before the path to a fixed column; a path never starts
// with a space (it is absolute or a bracketed name), so all are skipped.
Status ParseMapsLine(const char* file, std::string_view line, size_t line_no, VmaInfo* vma) {
  std::string_view rest = line;
  std::string_view range = TakeWord(&rest), perms = TakeWord(&rest), offset = TakeWord(&rest),
                   dev = TakeWord(&rest);
  if (dev.empty()) return LineError(file, line_no, "too few fields", line);
  // The kernel ends an anonymous line with "INODE "; accept it without the space too.
  std::string_view inode = TakeWord(&rest);
  if (inode.empty()) std::swap(inode, rest);
  size_t dash = range.find('-');
  if (dash == std::string_view::npos || !ParseNumber(range.substr(0, dash), &vma->start, 16) ||
      !ParseNumber(range.substr(dash + 1), &vma->end, 16) || vma->start >= vma->end) {
    return LineError(file, line_no, "bad address range", line);
  }
  if (perms.size() != 4 || (perms[0] != 'r' && perms[0] != '-') || (perms[1] != 'w' && perms[1] != '-') ||
      (perms[2] != 'x' && perms[2] != '-') || (perms[3] != 'p' && perms[3] != 's')) {
    return LineError(file, line_no, "bad permissions", line);
  }
  vma->read = perms[0] == 'r';
  vma->write = perms[1] == 'w';
  vma->exec = perms[2] == 'x';
  vma->shared = perms[3] == 's';
  if (!ParseNumber(offset, &vma->offset, 16)) return LineError(file, line_no, "bad offset", line);
  size_t colon = dev.find(':');
  if (colon == std::string_view::npos || !ParseNumber(dev.substr(0, colon), &vma->dev_major, 16) ||
      !ParseNumber(dev.substr(colon + 1), &vma->dev_minor, 16)) {
    return LineError(file, line_no, "bad device", line);
  }
  if (!ParseNumber(inode, &vma->inode)) return LineError(file, line_no, "bad inode", line);
  rest.remove_prefix(std::min(rest.find_first_not_of(' '), rest.size()));
  constexpr std::string_view kDeleted = " (deleted)";
  if (rest.size() > kDeleted.size() && rest.substr(rest.size() - kDeleted.size()) == kDeleted) {
    vma->deleted = true;
    rest.remove_suffix(kDeleted.size());
  }
  vma->path = std::string(rest);
  return Status::Ok();
}

// An smaps "Key: value" line starts with a name of letters, digits and
// '_' and a ':'; a maps line never does (its first word holds a '-').
bool IsKeyLine(std::string_view line, std::string_view* key, std::string_view* value) {
  size_t i = 0;
  while (i < line.size() && (std::isalnum(static_cast<unsigned char>(line[i])) || line[i] == '_')) i++;
  if (i == 0 || i >= line.size() || line[i] != ':') return false;
  *key = line.substr(0, i);
  *value = line.substr(i + 1);
  value->remove_prefix(std::min(value->find_first_not_of(' '), value->size()));
  return true;
}

// "1234 kB"
bool ParseKb(std::string_view value, uint64_t* out) {
  constexpr std::string_view kUnit = " kB";
  if (value.size() <= kUnit.size() || value.substr(value.size() - kUnit.size()) != kUnit) return false;
  return ParseNumber(value.substr(0, value.size() - kUnit.size()), out);
}

Result<std::vector<VmaInfo>> Parse(const char* file, const std::string& text, bool smaps) {
  std::vector<VmaInfo> vmas;
  std::string_view all = text;
  size_t line_no = 0;
  while (!all.empty()) {
    size_t nl = all.find('\n');
    std::string_view line = all.substr(0, nl);
    all.remove_prefix(nl == std::string_view::npos ? all.size() : nl + 1);
    line_no++;
    std::string_view key, value;
    if (smaps && IsKeyLine(line, &key, &value)) {
      if (vmas.empty()) return LineError(file, line_no, "'" + std::string(key) + "' before any mapping", line);
      VmaInfo& vma = vmas.back();
      bool ok = true;
      if (key == "Rss") {
        ok = ParseKb(value, &vma.rss_kb);
      } else if (key == "Anonymous") {
        ok = ParseKb(value, &vma.anonymous_kb);
      } else if (key == "Swap") {
        ok = ParseKb(value, &vma.swap_kb);
      } else if (key == "VmFlags") {
        vma.vm_flags.clear();
        std::string_view flags = value;
        while (!flags.empty()) {
          size_t space = flags.find(' ');
          std::string_view code = flags.substr(0, space);
          flags.remove_prefix(space == std::string_view::npos ? flags.size() : space + 1);
          if (code.empty()) continue;
          if (code.size() != 2) return LineError(file, line_no, "bad VmFlags code", line);
          vma.vm_flags.emplace_back(code);
        }
      }
      if (!ok) return LineError(file, line_no, "bad " + std::string(key) + " size", line);
      continue;
    }
    VmaInfo vma;
    if (Status s = ParseMapsLine(file, line, line_no, &vma); !s.ok()) return s;
    vmas.push_back(std::move(vma));
  }
  return vmas;
}

}  // namespace

bool VmaInfo::HasFlag(std::string_view code) const {
  return std::find(vm_flags.begin(), vm_flags.end(), code) != vm_flags.end();
}

Result<std::vector<VmaInfo>> ParseMaps(const std::string& text) { return Parse("maps", text, false); }

Result<std::vector<VmaInfo>> ParseSmaps(const std::string& text) { return Parse("smaps", text, true); }

}  // namespace roam
