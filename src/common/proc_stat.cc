#include "common/proc_stat.h"

#include <cstdlib>
#include <sstream>

namespace roam {

bool ParseProcStat(const std::string& text, ProcStat* out) {
  size_t open = text.find('(');
  size_t close = text.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open || close + 2 >= text.size()) {
    return false;
  }
  ProcStat s;
  s.pid = std::atoi(text.substr(0, open).c_str());
  s.comm = text.substr(open + 1, close - open - 1);
  std::istringstream rest(text.substr(close + 2));
  // state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
  std::string f[13];
  for (auto& x : f) {
    if (!(rest >> x)) return false;
  }
  if (f[0].size() != 1 || s.pid <= 0) return false;
  s.state = f[0][0];
  s.ppid = std::atoi(f[1].c_str());
  s.cpu_ticks = std::strtoull(f[11].c_str(), nullptr, 10) + std::strtoull(f[12].c_str(), nullptr, 10);
  *out = s;
  return true;
}

}  // namespace roam
