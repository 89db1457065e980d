#include "common/proc_fdinfo.h"
#include "common/proc_text.h"

#include <cctype>
#include <charconv>
#include <limits>
#include <string_view>
#include <utility>

namespace roam {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// The "key:value" and "key: value" pairs of one line, in order, as in
// "tfd:        3 events: 19 data: 4  pos:0 ino:1a sdev:10". False when a
// word is neither a key nor a key's value.
using Pairs = std::vector<std::pair<std::string_view, std::string_view>>;
bool SplitPairs(std::string_view line, Pairs* out) {
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && IsSpace(line[i])) i++;
    size_t start = i;
    while (i < line.size() && !IsSpace(line[i])) i++;
    if (i > start) words.push_back(line.substr(start, i - start));
  }
  for (size_t w = 0; w < words.size(); w++) {
    size_t colon = words[w].find(':');
    if (colon == std::string_view::npos) return false;
    std::string_view key = words[w].substr(0, colon), value = words[w].substr(colon + 1);
    if (value.empty() && w + 1 < words.size() && words[w + 1].find(':') == std::string_view::npos) value = words[++w];
    out->emplace_back(key, value);
  }
  return true;
}

// The value of `key` in `pairs` as a number, or false if absent or bad.
template <typename T>
bool PairNumber(const Pairs& pairs, std::string_view key, T* out, int base) {
  for (const auto& [k, v] : pairs) {
    if (k == key) return ParseNumber(v, out, base);
  }
  return false;
}

// "tfd: %8d events: %8x data: %16llx  pos:%lli ino:%lx sdev:%x"
bool ParseEpollLine(std::string_view line, EpollTarget* t) {
  Pairs p;
  int64_t pos = 0;
  if (!SplitPairs(line, &p) || !PairNumber(p, "tfd", &t->tfd, 10) || !PairNumber(p, "events", &t->events, 16) ||
      !PairNumber(p, "data", &t->data, 16) || !PairNumber(p, "pos", &pos, 10) || !PairNumber(p, "ino", &t->ino, 16) ||
      !PairNumber(p, "sdev", &t->sdev, 16)) {
    return false;
  }
  t->pos = static_cast<uint64_t>(pos);
  return true;
}

// "inotify wd:%x ino:%lx sdev:%x mask:%x ignored_mask:%x fhandle-bytes:%x
// fhandle-type:%x f_handle:%02x..." (the file handle is absent when the
// filesystem cannot encode one).
bool ParseInotifyLine(std::string_view line, InotifyWatch* w) {
  constexpr std::string_view kPrefix = "inotify ";
  Pairs p;
  uint32_t wd = 0;
  if (line.substr(0, kPrefix.size()) != kPrefix || !SplitPairs(line.substr(kPrefix.size()), &p) ||
      !PairNumber(p, "wd", &wd, 16) || !PairNumber(p, "ino", &w->ino, 16) || !PairNumber(p, "sdev", &w->sdev, 16) ||
      !PairNumber(p, "mask", &w->mask, 16) || !PairNumber(p, "ignored_mask", &w->ignored_mask, 16)) {
    return false;
  }
  w->wd = static_cast<int>(wd);
  uint32_t type = 0;
  if (!PairNumber(p, "fhandle-bytes", &w->fhandle_bytes, 16)) return true;
  if (!PairNumber(p, "fhandle-type", &type, 16)) return false;
  w->fhandle_type = static_cast<int>(type);
  for (const auto& [k, v] : p) {
    if (k == "f_handle") w->f_handle_hex = std::string(v);
  }
  if (w->f_handle_hex.size() != 2 * static_cast<uint64_t>(w->fhandle_bytes)) return false;
  for (char c : w->f_handle_hex) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// "(SECONDS, NANOSECONDS)" as nanoseconds.
bool ParseTimespec(std::string_view s, int64_t* ns) {
  if (s.size() < 2 || s.front() != '(' || s.back() != ')') return false;
  s = s.substr(1, s.size() - 2);
  size_t comma = s.find(',');
  if (comma == std::string_view::npos) return false;
  uint64_t sec = 0, nsec = 0;
  constexpr uint64_t kBillion = 1'000'000'000;
  if (!ParseNumber(Trim(s.substr(0, comma)), &sec) || !ParseNumber(Trim(s.substr(comma + 1)), &nsec) ||
      nsec >= kBillion || sec > (std::numeric_limits<int64_t>::max() - nsec) / kBillion) {
    return false;
  }
  *ns = static_cast<int64_t>(sec * kBillion + nsec);
  return true;
}

}  // namespace

Result<FdInfo> ParseFdinfo(const std::string& text) {
  FdInfo info;
  bool have_pos = false, have_flags = false, have_mnt_id = false;
  int timerfd_lines = 0;
  std::string_view all = text;
  size_t line_no = 0;
  while (!all.empty()) {
    size_t nl = all.find('\n');
    std::string_view line = all.substr(0, nl);
    all.remove_prefix(nl == std::string_view::npos ? all.size() : nl + 1);
    line_no++;
    auto error = [&](const char* what) {
      return Status::Error("fdinfo line " + std::to_string(line_no) + ": " + what + ": '" +
                           std::string(line.substr(0, 120)) + "'");
    };
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return error("no ':'");
    std::string_view key = line.substr(0, colon), value = Trim(line.substr(colon + 1));
    bool ok = true;
    if (key == "pos") {
      int64_t pos = 0;  // negative for some device files; kept as its bit pattern
      ok = have_pos = ParseNumber(value, &pos);
      info.pos = static_cast<uint64_t>(pos);
    } else if (key == "flags") {
      ok = have_flags = ParseNumber(value, &info.flags, 8);
    } else if (key == "mnt_id") {
      ok = have_mnt_id = ParseNumber(value, &info.mnt_id);
    } else if (key == "ino") {
      ok = ParseNumber(value, &info.ino);
    } else if (key == "tty-index") {
      int index = 0;
      ok = ParseNumber(value, &index);
      info.tty_index = index;
    } else if (key == "Pid") {
      int pid = 0;
      ok = ParseNumber(value, &pid) && pid >= -1;
      info.pidfd_pid = pid;
    } else if (key == "lock") {
      info.locks.emplace_back(value);
    } else if (key == "eventfd-count") {
      uint64_t count = 0;
      ok = ParseNumber(value, &count, 16);
      info.eventfd_count = count;
    } else if (key == "eventfd-id") {
      int id = 0;
      ok = ParseNumber(value, &id);
      info.eventfd_id = id;
    } else if (key == "eventfd-semaphore") {
      ok = value == "0" || value == "1";
      info.eventfd_semaphore = value == "1";
    } else if (key == "clockid") {
      ok = ParseNumber(value, &info.timerfd_clockid);
      timerfd_lines |= 1;
    } else if (key == "ticks") {
      ok = ParseNumber(value, &info.timerfd_ticks);
      timerfd_lines |= 2;
    } else if (key == "settime flags") {
      ok = ParseNumber(value, &info.timerfd_settime_flags, 8);
      timerfd_lines |= 4;
    } else if (key == "it_value") {
      ok = ParseTimespec(value, &info.timerfd_value_ns);
      timerfd_lines |= 8;
    } else if (key == "it_interval") {
      ok = ParseTimespec(value, &info.timerfd_interval_ns);
      timerfd_lines |= 16;
    } else if (key == "sigmask") {
      uint64_t mask = 0;
      ok = ParseNumber(value, &mask, 16);
      info.signalfd_sigmask = mask;
    } else if (key == "tfd") {
      ok = ParseEpollLine(line, &info.epoll.emplace_back());
    } else if (key == "inotify wd") {
      ok = ParseInotifyLine(line, &info.inotify.emplace_back());
    }
    if (!ok) return error("bad value");
  }
  if (!have_pos || !have_flags || !have_mnt_id) return Status::Error("fdinfo: no pos, flags or mnt_id line");
  if (timerfd_lines != 0 && timerfd_lines != 31) return Status::Error("fdinfo: timerfd lines missing");
  info.is_timerfd = timerfd_lines == 31;
  return info;
}

}  // namespace roam
