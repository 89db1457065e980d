#include "cli/mon.h"

#include <ncurses.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>

#include "cli/cli_error.h"
#include "cli/control_client.h"
#include "cli/node_table.h"
#include "cluster/member.h"

namespace roam {

namespace {

Result<pb::NodesReply> Fetch(const std::string& socket_path) {
  pb::ControlRequest req;
  req.mutable_nodes();
  Result<pb::ControlReply> r = CallRoamd(socket_path, req);
  if (!r.ok()) return r.status();
  return r->nodes();
}

int RunPlain(const std::string& socket_path, int count) {
  for (int i = 0; count == 0 || i < count; ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::seconds(1));
    Result<pb::NodesReply> r = Fetch(socket_path);
    if (!r.ok()) {
      Fail("mon", r.status());
      return 1;
    }
    printf("%s", RenderTable(NodeTableHeader(), NodeTableRows(*r), false).c_str());
    printf("\n");
    fflush(stdout);
  }
  return 0;
}

enum class Figure { kLoad, kSpeed, kMemory, kUtil };

double Value(const pb::LoadVector& l, Figure f) {
  switch (f) {
    case Figure::kLoad: return l.load();
    case Figure::kSpeed: return l.speed() * l.cpu_share();
    case Figure::kMemory: return l.mem_total() ? double(l.mem_total() - l.mem_free()) / double(l.mem_total()) : 0;
    case Figure::kUtil: return l.cpu_util();
  }
  return 0;
}

const char* Title(Figure f) {
  switch (f) {
    case Figure::kLoad: return "load (run-queue length)";
    case Figure::kSpeed: return "speed x usable CPUs";
    case Figure::kMemory: return "memory in use";
    case Figure::kUtil: return "CPU utilisation";
  }
  return "";
}

void Draw(const pb::NodesReply& reply, Figure fig, bool show_dead, const std::string& error) {
  erase();
  int rows = LINES, cols = COLS;
  mvprintw(0, 0, "roam mon - cluster %s, seen from %s - %s", reply.cluster().c_str(), reply.self().c_str(),
           Title(fig));
  mvprintw(1, 0, "keys: l load  s speed  m memory  u utilisation  d %s dead nodes  q quit",
           show_dead ? "hide" : "show");
  std::vector<const pb::NodeView*> nodes;
  for (const auto& n : reply.nodes()) {
    bool live = n.state() == pb::ALIVE || n.state() == pb::SUSPECT;
    if (live || show_dead) nodes.push_back(&n);
  }
  std::sort(nodes.begin(), nodes.end(), [](auto* a, auto* b) { return NaturalLess(a->name(), b->name()); });
  double max = (fig == Figure::kMemory || fig == Figure::kUtil) ? 1.0 : 0.0;
  for (auto* n : nodes) {
    if (n->has_load()) max = std::max(max, Value(n->load(), fig));
  }
  if (max <= 0) max = 1;
  int y = 3;
  const int bar_width = std::max(10, cols - 40);
  for (auto* n : nodes) {
    if (y >= rows / 2 + 2) break;
    bool live = n->state() == pb::ALIVE || n->state() == pb::SUSPECT;
    mvprintw(y, 0, "%-10.10s %-7s", n->name().c_str(), MemberStateName(n->state()));
    if (live && n->has_load()) {
      double v = Value(n->load(), fig);
      int len = static_cast<int>(v / max * bar_width);
      attron(A_REVERSE);
      for (int i = 0; i < len; ++i) mvaddch(y, 19 + i, ' ');
      attroff(A_REVERSE);
      if (fig == Figure::kMemory || fig == Figure::kUtil) mvprintw(y, 20 + bar_width, "%5.0f%%", v * 100);
      else mvprintw(y, 20 + bar_width, "%8.2f", v);
    }
    ++y;
  }
  ++y;
  std::string table = RenderTable(NodeTableHeader(), NodeTableRows(reply, show_dead), true);
  size_t pos = 0;
  while (y < rows - 1 && pos < table.size()) {
    size_t nl = table.find('\n', pos);
    mvprintw(y++, 0, "%.*s", std::min<int>(cols, static_cast<int>(nl - pos)), table.c_str() + pos);
    pos = nl + 1;
  }
  if (!error.empty()) mvprintw(rows - 1, 0, "%s", error.c_str());
  refresh();
}

}  // namespace

int RunMon(const std::string& socket_path, int count) {
  if (!isatty(STDOUT_FILENO)) return RunPlain(socket_path, count);
  Result<pb::NodesReply> first = Fetch(socket_path);
  if (!first.ok()) {
    Fail("mon", first.status());
    return 1;
  }
  initscr();
  cbreak();
  noecho();
  curs_set(0);
  timeout(100);
  Figure fig = Figure::kLoad;
  bool show_dead = true;
  pb::NodesReply last = *first;
  std::string error;
  auto next = std::chrono::steady_clock::now();
  int shown = 0;
  for (;;) {
    if (std::chrono::steady_clock::now() >= next) {
      Result<pb::NodesReply> r = Fetch(socket_path);
      if (r.ok()) {
        last = *r;
        error.clear();
      } else {
        error = "roamd: " + r.status().message();
      }
      Draw(last, fig, show_dead, error);
      next += std::chrono::seconds(1);
      if (count > 0 && ++shown >= count) break;
    }
    int ch = getch();
    if (ch == 'q' || ch == 'Q') break;
    bool redraw = true;
    switch (ch) {
      case 'l': fig = Figure::kLoad; break;
      case 's': fig = Figure::kSpeed; break;
      case 'm': fig = Figure::kMemory; break;
      case 'u': fig = Figure::kUtil; break;
      case 'd': show_dead = !show_dead; break;
      default: redraw = false;
    }
    if (redraw) Draw(last, fig, show_dead, error);
  }
  endwin();
  return 0;
}

}  // namespace roam
