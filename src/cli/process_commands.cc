#include "cli/process_commands.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>

#include "cli/cli_error.h"
#include "cli/control_client.h"
#include "cli/node_table.h"
#include "cli/run_command.h"

namespace roam {

std::vector<std::string> PsTableHeader() {
  return {"GPID", "USER", "HOME", "WHERE", "STATE", "NMIG", "LOCK", "CANTMOVE", "CPU%", "RSS", "TIME", "COMMAND"};
}

namespace {

std::string Clock(double seconds) {
  long s = static_cast<long>(seconds);
  char buf[32];
  if (s >= 3600) {
    snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  } else {
    snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  }
  return buf;
}

}  // namespace

nlohmann::json MigrationJson(const pb::MigrationFigures& m) {
  return {{"gpid", m.gpid()},
          {"from", m.from()},
          {"to", m.to()},
          {"total_ms", m.total_ms()},
          {"frozen_ms", m.frozen_ms()},
          {"rounds", m.rounds()},
          {"bytes_sent", m.bytes_sent()},
          {"precopy_bytes", m.precopy_bytes()},
          {"bytes_compressed", m.bytes_compressed()},
          {"dump_ms", m.dump_ms()},
          {"restore_ms", m.restore_ms()}};
}

std::string MigrationLine(const pb::MigrationFigures& m) {
  char buf[512];
  char precopy[128] = "";
  const double ran = static_cast<double>(m.precopy_bytes()) / (1 << 20);
  const double compressed = static_cast<double>(m.bytes_compressed()) / (1 << 20);
  if (m.precopy_bytes() != 0 && m.bytes_compressed() != 0) {
    snprintf(precopy, sizeof precopy, " (%.1f MiB of memory while it ran; %.1f MiB went compressed)", ran, compressed);
  } else if (m.precopy_bytes() != 0) {
    snprintf(precopy, sizeof precopy, " (%.1f MiB while it ran)", ran);
  } else if (m.bytes_compressed() != 0) {
    snprintf(precopy, sizeof precopy, " (%.1f MiB went compressed)", compressed);
  }
  snprintf(buf, sizeof buf, "%s moved %s -> %s in %.1f ms (frozen %.1f ms), %u round%s, %.1f MiB sent%s\n",
           m.gpid().c_str(), m.from().c_str(), m.to().c_str(), m.total_ms(), m.frozen_ms(), m.rounds(),
           m.rounds() == 1 ? "" : "s", static_cast<double>(m.bytes_sent()) / (1 << 20), precopy);
  return buf;
}

std::string ProgressLine(const pb::MoveProgress& p) {
  char buf[512];
  std::string rounds = p.rounds() > 0 ? ", round " + std::to_string(p.rounds()) : "";
  char rate[48] = "";
  if (p.rate_bps() > 0) snprintf(rate, sizeof rate, ", %.0f MiB/s", p.rate_bps() / (1 << 20));
  snprintf(buf, sizeof buf, "%s %s -> %s: %s%s, %.1f MiB sent%s, %.1f s", p.gpid().c_str(), p.from().c_str(),
           p.to().c_str(), p.phase().c_str(), rounds.c_str(), static_cast<double>(p.bytes_sent()) / (1 << 20), rate,
           p.elapsed_ms() / 1000.0);
  return buf;
}

namespace {

// While `roam migrate` waits for its answer, a second connection asks how
// far the move has come and rewrites one line on the terminal (stderr).
class ProgressShow {
 public:
  ProgressShow(const std::string& socket, const std::string& gpid) {
    thread_ = std::thread([this, socket, gpid] {
      pb::ControlRequest req;
      req.mutable_move_progress()->set_gpid(gpid);
      std::unique_lock<std::mutex> lock(mu_);
      // The first look after a moment: a short move never shows a line.
      while (!cv_.wait_for(lock, std::chrono::milliseconds(300), [this] { return stop_; })) {
        lock.unlock();
        Result<pb::ControlReply> r = CallRoamd(socket, req);
        lock.lock();
        if (stop_) break;
        if (!r.ok()) continue;  // not begun yet, or just over
        fprintf(stderr, "\r\033[K%s", ProgressLine(r->move_progress()).c_str());
        shown_ = true;
      }
      if (shown_) fprintf(stderr, "\r\033[K");
    });
  }
  ~ProgressShow() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false, shown_ = false;
  std::thread thread_;
};

}  // namespace

std::vector<std::vector<std::string>> PsTableRows(const pb::PsReply& reply) {
  std::vector<std::vector<std::string>> rows;
  for (const pb::ProcessView& p : reply.processes()) {
    char cpu[32];
    snprintf(cpu, sizeof cpu, "%.1f", p.cpu_percent());
    rows.push_back({p.gpid(), p.user(), p.home(), p.where(), p.state(), std::to_string(p.nmig()),
                    p.lock() ? "yes" : "no", p.cantmove().empty() ? "-" : p.cantmove(), cpu,
                    HumanBytes(p.rss_bytes()), Clock(p.time_seconds()), p.command().empty() ? "?" : p.command()});
  }
  return rows;
}

nlohmann::json PsJson(const pb::PsReply& reply) {
  nlohmann::json procs = nlohmann::json::array();
  for (const pb::ProcessView& p : reply.processes()) {
    procs.push_back({{"gpid", p.gpid()},
                     {"pid", p.pid()},
                     {"user", p.user()},
                     {"uid", p.uid()},
                     {"home", p.home()},
                     {"where", p.where()},
                     {"state", p.state()},
                     {"nmig", p.nmig()},
                     {"lock", p.lock()},
                     {"cantmove", p.cantmove()},
                     {"address", p.address().empty() ? nlohmann::json(nullptr) : nlohmann::json(p.address())},
                     {"cpu_percent", p.cpu_percent()},
                     {"rss_bytes", p.rss_bytes()},
                     {"time_seconds", p.time_seconds()},
                     {"command", p.command().empty() ? nlohmann::json(nullptr) : nlohmann::json(p.command())}});
  }
  nlohmann::json unreachable = nlohmann::json::array();
  for (const auto& n : reply.unreachable()) unreachable.push_back(n);
  return {{"processes", procs}, {"unreachable", unreachable}};
}

int ParseSignal(const std::string& s) {
  if (s.empty()) return 0;
  if (std::all_of(s.begin(), s.end(), ::isdigit)) {
    int n = s.size() < 4 ? std::stoi(s) : 0;
    return n > 0 && n < NSIG ? n : 0;
  }
  std::string name = s;
  std::transform(name.begin(), name.end(), name.begin(), ::toupper);
  if (name.rfind("SIG", 0) == 0) name = name.substr(3);
  for (int n = 1; n < NSIG; ++n) {
    const char* abbrev = sigabbrev_np(n);
    if (abbrev && name == abbrev) return n;
  }
  return 0;
}

namespace {
RunOptions* g_run = new RunOptions();  // filled by SplitRunCommand and CLI11; lives as long as the process
}

int SplitRunCommand(int argc, char** argv, std::vector<std::string>* command) {
  int i = 1;
  // Top-level options before the subcommand.
  while (i < argc && argv[i][0] == '-') {
    const std::string a = argv[i];
    i += (a == "--socket") ? 2 : 1;
  }
  if (i >= argc || std::string(argv[i]) != "run") return argc;
  for (++i; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--") {
      for (int j = i + 1; j < argc; ++j) command->push_back(argv[j]);
      return i;
    }
    if (a == "--on" || a == "--address") {
      ++i;  // its value
      continue;
    }
    if (a[0] != '-') break;
  }
  for (int j = i; j < argc; ++j) command->push_back(argv[j]);
  return i;
}

void SetRunCommand(std::vector<std::string> command) { g_run->argv = std::move(command); }

void AddProcessCommands(CLI::App& app, const std::string& socket, int* code, CommandFilter& want) {
  if (want("run")) {
    RunOptions* opt = g_run;
    auto* run = app.add_subcommand("run", "run a command on the cluster, as if here (roam run [OPTIONS] -- CMD ...)");
    run->add_option("--on", opt->on, "run on this node");
    auto* best = new bool(false);
    run->add_flag("--best", *best, "run where it finishes soonest (the default)");
    run->add_flag("--lock", opt->lock, "run at home and stay there");
    run->add_flag("-t,--tty", opt->tty, "give the process a pseudo-terminal");
    run->add_option("--address", opt->address,
                    "give it an IPv4 address of its own that moves with it (auto: one of the cluster's pool)");
    // The command itself is split off before CLI11 sees argv (SplitRunCommand).
    run->callback([&socket, code, opt, run, best] {
      if (*best && !opt->on.empty()) {
        Fail("run", "--on and --best exclude each other");
        *code = 255;
        return;
      }
      *code = RunCommand(socket, *opt);
    });
  }

  if (want("ps")) {
    auto* all = new bool(false);
    auto* json = new bool(false);
    auto* ps = app.add_subcommand("ps", "roam processes started here (--all: in the whole cluster)");
    ps->add_flag("--all", *all, "every node's processes");
    ps->add_flag("--json", *json, "one JSON document");
    ps->callback([&socket, code, all, json] {
      pb::ControlRequest req;
      req.mutable_ps()->set_all(*all);
      Result<pb::ControlReply> r = CallRoamd(socket, req);
      if (!r.ok()) {
        Fail("ps", r.status());
        *code = 1;
        return;
      }
      if (*json) {
        printf("%s\n", PsJson(r->ps()).dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      } else {
        printf("%s", RenderTable(PsTableHeader(), PsTableRows(r->ps()), isatty(STDOUT_FILENO)).c_str());
      }
      for (const auto& n : r->ps().unreachable()) Fail("ps", n + " did not answer");
    });
  }

  if (want("migrate")) {
    auto* mgpid = new std::string();
    auto* mto = new std::string();
    auto* mjson = new bool(false);
    auto* migrate = app.add_subcommand("migrate", "move a running roam process to another node");
    migrate->add_option("GPID", *mgpid, "the process, as HOME:PID")->required();
    migrate->add_option("NODE", *mto, "a node name, best, or home")->required();
    migrate->add_flag("--json", *mjson, "print the move's figures as one JSON document");
    migrate->callback([&socket, code, mgpid, mto, mjson] {
      pb::ControlRequest req;
      req.mutable_migrate()->set_gpid(*mgpid);
      req.mutable_migrate()->set_to(*mto);
      std::unique_ptr<ProgressShow> show;
      if (!*mjson && isatty(STDERR_FILENO)) show = std::make_unique<ProgressShow>(socket, *mgpid);
      Result<pb::ControlReply> r = CallRoamd(socket, req);
      show.reset();
      if (!r.ok()) {
        Fail("migrate", r.status());
        *code = 1;
        return;
      }
      if (*mjson) {
        printf("%s\n", MigrationJson(r->migration()).dump(2).c_str());
      } else {
        printf("%s", MigrationLine(r->migration()).c_str());
      }
    });
  }

  for (bool lock : {true, false}) {
    if (!want(lock ? "lock" : "unlock")) continue;
    auto* g = new std::string();
    auto* c = app.add_subcommand(lock ? "lock" : "unlock",
                                 lock ? "keep a roam process where it is (no move)" : "let a locked process move again");
    c->add_option("GPID", *g, "the process, as HOME:PID")->required();
    c->callback([&socket, code, g, lock] {
      pb::ControlRequest req;
      req.mutable_lock()->set_gpid(*g);
      req.mutable_lock()->set_lock(lock);
      Result<pb::ControlReply> r = CallRoamd(socket, req);
      if (!r.ok()) {
        Fail(lock ? "lock" : "unlock", r.status());
        *code = 1;
      }
    });
  }

  if (want("kill")) {
    auto* sig = new std::string("TERM");
    auto* gpid = new std::string();
    auto* kill = app.add_subcommand("kill", "send a signal to a roam process, wherever it runs");
    kill->add_option("-s,--signal", *sig, "signal name or number (default TERM)");
    kill->add_option("GPID", *gpid, "the process, as HOME:PID")->required();
    kill->callback([&socket, code, sig, gpid] {
      int signo = ParseSignal(*sig);
      if (signo == 0) {
        Fail("kill", "unknown signal '" + *sig + "'");
        *code = 1;
        return;
      }
      pb::ControlRequest req;
      req.mutable_kill()->set_gpid(*gpid);
      req.mutable_kill()->set_signo(signo);
      Result<pb::ControlReply> r = CallRoamd(socket, req);
      if (!r.ok()) {
        Fail("kill", r.status());
        *code = 1;
      }
    });
  }
}

}  // namespace roam
