#include "common/proc_timers.h"
#include "common/proc_text.h"

#include <charconv>
#include <string_view>

namespace roam {
namespace {

// "signal: %d/%px"
bool ParseSignal(std::string_view s, PosixTimerInfo* t) {
  size_t slash = s.find('/');
  return slash != std::string_view::npos && ParseNumber(s.substr(0, slash), &t->signo) &&
         ParseNumber(s.substr(slash + 1), &t->sigval, 16);
}

// "notify: %s/%s.%d": signal|thread|none, then tid|pid and its number.
bool ParseNotify(std::string_view s, PosixTimerInfo* t) {
  size_t slash = s.find('/');
  if (slash == std::string_view::npos) return false;
  std::string_view kind = s.substr(0, slash), target = s.substr(slash + 1);
  if (kind != "signal" && kind != "thread" && kind != "none") return false;
  t->notify = std::string(kind);
  if (target.substr(0, 4) == "tid.") {
    t->notify_to_thread = true;
  } else if (target.substr(0, 4) != "pid.") {
    return false;
  }
  return ParseNumber(target.substr(4), &t->notify_tid);
}

}  // namespace

Result<std::vector<PosixTimerInfo>> ParseProcTimers(const std::string& text) {
  static constexpr std::string_view kKeys[] = {"ID: ", "signal: ", "notify: ", "ClockID: "};
  std::vector<PosixTimerInfo> timers;
  std::string_view all = text;
  size_t line_no = 0;
  while (!all.empty()) {
    size_t nl = all.find('\n');
    std::string_view line = all.substr(0, nl);
    all.remove_prefix(nl == std::string_view::npos ? all.size() : nl + 1);
    size_t which = line_no % 4;  // the line's place in its timer's block
    line_no++;
    std::string_view key = kKeys[which];
    if (line.substr(0, key.size()) != key) {
      return Status::Error("timers line " + std::to_string(line_no) + ": want '" + std::string(key) + "...', got '" +
                           std::string(line.substr(0, 120)) + "'");
    }
    std::string_view value = line.substr(key.size());
    if (which == 0) timers.emplace_back();
    PosixTimerInfo& t = timers.back();
    bool ok = which == 0   ? ParseNumber(value, &t.id)
              : which == 1 ? ParseSignal(value, &t)
              : which == 2 ? ParseNotify(value, &t)
                           : ParseNumber(value, &t.clockid);
    if (!ok) {
      return Status::Error("timers line " + std::to_string(line_no) + ": bad value '" +
                           std::string(line.substr(0, 120)) + "'");
    }
  }
  if (line_no % 4 != 0) return Status::Error("timers: last timer has " + std::to_string(line_no % 4) + " of 4 lines");
  return timers;
}

}  // namespace roam
