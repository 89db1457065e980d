#include "common/proc_stat.h"

#include "common/file_util.h"
#include "common/proc_text.h"

#include <charconv>
#include <string_view>

namespace roam {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\n' || c == '\t'; }

std::vector<std::string_view> SplitSpaces(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && IsSpace(s[i])) i++;
    size_t start = i;
    while (i < s.size() && !IsSpace(s[i])) i++;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

}  // namespace

Result<ProcStat> ParseProcStat(const std::string& text) {
  size_t open = text.find(" (");
  size_t close = text.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open + 2) {
    return Status::Error("stat: no '(command)'");
  }
  ProcStat s;
  if (!ParseNumber(std::string_view(text).substr(0, open), &s.pid) || s.pid <= 0) {
    return Status::Error("stat: bad pid '" + text.substr(0, open) + "'");
  }
  s.comm = text.substr(open + 2, close - open - 2);
  // rest[0] is field 3 (state).
  std::vector<std::string_view> rest = SplitSpaces(std::string_view(text).substr(close + 1));
  s.field_count = static_cast<int>(rest.size()) + 2;
  if (s.field_count < 15) return Status::Error("stat: " + std::to_string(s.field_count) + " fields, want >= 15");
  auto field = [&](int number) { return rest[number - 3]; };
  if (field(3).size() != 1) return Status::Error("stat: bad state '" + std::string(field(3)) + "'");
  s.state = field(3)[0];
  // Stores field `number` into *member when the text has it.
  int bad = 0;
  auto take = [&](int number, auto* member) {
    if (number > s.field_count || ParseNumber(field(number), member)) return true;
    bad = number;
    return false;
  };
  bool ok = take(4, &s.ppid) && take(5, &s.pgrp) && take(6, &s.session) && take(7, &s.tty_nr) && take(8, &s.tpgid) &&
            take(9, &s.flags) && take(20, &s.num_threads) && take(26, &s.start_code) && take(27, &s.end_code) &&
            take(28, &s.start_stack) && take(38, &s.exit_signal) && take(45, &s.start_data) &&
            take(46, &s.end_data) && take(47, &s.start_brk) && take(48, &s.arg_start) && take(49, &s.arg_end) &&
            take(50, &s.env_start) && take(51, &s.env_end) && take(52, &s.exit_code);
  if (!ok) return Status::Error("stat: bad field " + std::to_string(bad) + " '" + std::string(field(bad)) + "'");
  uint64_t utime = 0, stime = 0;
  if (!ParseNumber(field(14), &utime) || !ParseNumber(field(15), &stime)) {
    return Status::Error("stat: bad utime/stime");
  }
  s.cpu_ticks = utime + stime;
  return s;
}

bool ParseProcStat(const std::string& text, ProcStat* out) {
  Result<ProcStat> r = ParseProcStat(text);
  if (!r.ok()) return false;
  *out = std::move(r).value();
  return true;
}

std::vector<int> ParseChildrenList(const std::string& text, Status* error) {
  std::vector<int> pids;
  Status first_bad;
  for (std::string_view word : SplitSpaces(text)) {
    int pid = 0;
    if (ParseNumber(word, &pid) && pid > 0) {
      pids.push_back(pid);
    } else if (first_bad.ok()) {
      first_bad = Status::Error("children: bad pid '" + std::string(word.substr(0, 40)) + "'");
    }
  }
  if (error != nullptr) *error = first_bad;
  return pids;
}

char ReadProcState(int pid) {
  Result<std::string> text = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  ProcStat ps;
  return text.ok() && ParseProcStat(*text, &ps) ? ps.state : 0;
}

std::vector<int> ReadProcessTree(int root) {
  std::vector<int> tree{root};
  for (size_t i = 0; i < tree.size(); ++i) {
    const std::string pid = std::to_string(tree[i]);
    Result<std::string> kids = ReadFile("/proc/" + pid + "/task/" + pid + "/children");
    if (!kids.ok()) continue;
    for (int k : ParseChildrenList(*kids)) tree.push_back(k);
  }
  return tree;
}

}  // namespace roam
