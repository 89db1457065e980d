#include "common/proc_status.h"
#include "common/proc_text.h"

#include <charconv>
#include <string_view>

namespace roam {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

// Whitespace-separated numbers, all of them, or false.
template <typename T>
bool ParseList(std::string_view s, std::vector<T>* out) {
  out->clear();
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && IsSpace(s[i])) i++;
    size_t start = i;
    while (i < s.size() && !IsSpace(s[i])) i++;
    if (i == start) break;
    T v{};
    if (!ParseNumber(s.substr(start, i - start), &v)) return false;
    out->push_back(v);
  }
  return true;
}

// "Uid:\t1000\t1001\t1002\t1001": exactly four ids.
bool ParseIds(std::string_view s, uint32_t ids[4]) {
  std::vector<uint32_t> v;
  if (!ParseList(s, &v) || v.size() != 4) return false;
  for (int i = 0; i < 4; i++) ids[i] = v[i];
  return true;
}

// The kernel escapes '\n' as "\n" and '\' as "\\" in the name; nothing else.
bool Unescape(std::string_view s, std::string* out) {
  out->clear();
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] != '\\') {
      out->push_back(s[i]);
    } else if (i + 1 < s.size() && (s[i + 1] == 'n' || s[i + 1] == '\\')) {
      out->push_back(s[++i] == 'n' ? '\n' : '\\');
    } else {
      return false;
    }
  }
  return true;
}

// "R (running)"
bool ParseState(std::string_view s, char* out) {
  if (s.empty() || (s.size() > 1 && s[1] != ' ')) return false;
  *out = s[0];
  return true;
}

bool ParseFlag(std::string_view s, bool* out) {
  *out = s == "1";
  return s == "0" || s == "1";
}

// Each "Key:\tvalue" line of a status text, in order: `fn(key, value)`,
// the value without the tab after the colon (and, but for Name, without
// the blanks around it). Lines without a colon are skipped. Stops at the
// first line for which `fn` returns false.
template <typename Fn>
void ForEachStatusLine(std::string_view all, Fn fn) {
  while (!all.empty()) {
    size_t nl = all.find('\n');
    std::string_view line = all.substr(0, nl);
    all.remove_prefix(nl == std::string_view::npos ? all.size() : nl + 1);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view key = line.substr(0, colon), value = line.substr(colon + 1);
    if (!value.empty() && value.front() == '\t') value.remove_prefix(1);
    if (key != "Name") {
      while (!value.empty() && IsSpace(value.front())) value.remove_prefix(1);
      while (!value.empty() && IsSpace(value.back())) value.remove_suffix(1);
    }
    if (!fn(key, value)) return;
  }
}

}  // namespace

Result<ProcStatus> ParseProcStatus(const std::string& text) {
  ProcStatus st;
  std::vector<std::string_view> seen;
  Status bad;
  ForEachStatusLine(text, [&](std::string_view key, std::string_view value) {
    bool ok = true, known = true;
    // clang-format off
    if (key == "Name") ok = Unescape(value, &st.name);
    else if (key == "Umask") ok = ParseNumber(value, &st.umask, 8);
    else if (key == "State") ok = ParseState(value, &st.state);
    else if (key == "Tgid") ok = ParseNumber(value, &st.tgid);
    else if (key == "Pid") ok = ParseNumber(value, &st.pid);
    else if (key == "PPid") ok = ParseNumber(value, &st.ppid);
    else if (key == "TracerPid") ok = ParseNumber(value, &st.tracer_pid);
    else if (key == "Uid") ok = ParseIds(value, st.uid);
    else if (key == "Gid") ok = ParseIds(value, st.gid);
    else if (key == "Groups") ok = ParseList(value, &st.groups);
    else if (key == "NSpid") ok = ParseList(value, &st.ns_pid) && !st.ns_pid.empty();
    else if (key == "NSpgid") ok = ParseList(value, &st.ns_pgid) && !st.ns_pgid.empty();
    else if (key == "NSsid") ok = ParseList(value, &st.ns_sid) && !st.ns_sid.empty();
    else if (key == "Threads") ok = ParseNumber(value, &st.threads);
    else if (key == "SigPnd") ok = ParseNumber(value, &st.sig_pnd, 16);
    else if (key == "ShdPnd") ok = ParseNumber(value, &st.shd_pnd, 16);
    else if (key == "SigBlk") ok = ParseNumber(value, &st.sig_blk, 16);
    else if (key == "SigIgn") ok = ParseNumber(value, &st.sig_ign, 16);
    else if (key == "SigCgt") ok = ParseNumber(value, &st.sig_cgt, 16);
    else if (key == "CapInh") ok = ParseNumber(value, &st.cap_inh, 16);
    else if (key == "CapPrm") ok = ParseNumber(value, &st.cap_prm, 16);
    else if (key == "CapEff") ok = ParseNumber(value, &st.cap_eff, 16);
    else if (key == "CapBnd") ok = ParseNumber(value, &st.cap_bnd, 16);
    else if (key == "CapAmb") ok = ParseNumber(value, &st.cap_amb, 16);
    else if (key == "NoNewPrivs") ok = ParseFlag(value, &st.no_new_privs);
    else if (key == "Seccomp") ok = ParseNumber(value, &st.seccomp);
    else if (key == "Seccomp_filters") ok = ParseNumber(value, &st.seccomp_filters);
    else known = false;
    // clang-format on
    if (!ok) bad = Status::Error("status: bad " + std::string(key) + " '" + std::string(value.substr(0, 120)) + "'");
    if (known) seen.push_back(key);
    return ok;
  });
  if (!bad.ok()) return bad;
  static constexpr std::string_view kRequired[] = {
      "Name",   "Umask",  "State",  "Tgid",   "Pid",    "PPid",   "TracerPid", "Uid",        "Gid",
      "Groups", "NSpid",  "NSpgid", "NSsid",  "Threads", "SigPnd", "ShdPnd",   "SigBlk",     "SigIgn",
      "SigCgt", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp", "Seccomp_filters"};
  for (std::string_view key : kRequired) {
    bool found = false;
    for (std::string_view s : seen) found = found || s == key;
    if (!found) return Status::Error("status: no " + std::string(key) + " line");
  }
  return st;
}

Result<ProcLineage> ParseProcLineage(const std::string& text) {
  ProcLineage l;
  bool tgid = false, ppid = false;
  Status bad;
  ForEachStatusLine(text, [&](std::string_view key, std::string_view value) {
    bool* seen = key == "Tgid" ? &tgid : key == "PPid" ? &ppid : nullptr;
    if (seen == nullptr) return true;
    if (!ParseNumber(value, key == "Tgid" ? &l.tgid : &l.ppid)) {
      bad = Status::Error("status: bad " + std::string(key) + " '" + std::string(value.substr(0, 120)) + "'");
      return false;
    }
    *seen = true;
    return !(tgid && ppid);
  });
  if (!bad.ok()) return bad;
  if (!tgid || !ppid) return Status::Error(std::string("status: no ") + (tgid ? "PPid" : "Tgid") + " line");
  return l;
}

Result<std::vector<ProcLimit>> ParseProcLimits(const std::string& text) {
  std::vector<ProcLimit> out;
  size_t pos = 0;
  int line_no = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string line = text.substr(pos, eol - pos);
    pos = eol + 1;
    if (++line_no == 1) {
      if (line.rfind("Limit", 0) != 0) return Status::Error("limits line 1: not the header");
      continue;
    }
    if (line.size() < 67) return Status::Error("limits line " + std::to_string(line_no) + ": too short");
    ProcLimit l;
    uint64_t* fields[2] = {&l.soft, &l.hard};
    for (int i = 0; i < 2; ++i) {
      std::string v = line.substr(26 + 21 * static_cast<size_t>(i), 20);
      while (!v.empty() && v.back() == ' ') v.pop_back();
      if (v == "unlimited") {
        *fields[i] = ~uint64_t{0};
        continue;
      }
      if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos) {
        return Status::Error("limits line " + std::to_string(line_no) + ": bad value '" + v + "'");
      }
      *fields[i] = std::stoull(v);
    }
    out.push_back(l);
  }
  if (out.empty()) return Status::Error("limits: no resources");
  return out;
}

}  // namespace roam
