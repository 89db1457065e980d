#include "cli/ckpt_commands.h"

#include <signal.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <cstdio>

#include "cli/cli_error.h"
#include "ckpt/checkpoint.h"
#include "ckpt/image.h"
#include "ckpt/image_show.h"
#include "ckpt/kernel_features.h"
#include "ckpt/restore.h"

namespace roam {

namespace {

constexpr int kCapCheckpointRestore = 40;  // CAP_CHECKPOINT_RESTORE (Linux 5.9)

// The engine on its own reads /proc/PID/map_files (every process maps its
// program) and gives processes their PIDs back with clone3's set_tid: both
// need CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN, which root has. Without
// them `roam checkpoint` failed on its first map_files entry, and `roam
// restore` on clone3, with the system's EPERM and nothing else.
Status NeedCheckpointRestore(const char* why) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &header, data) != 0) return Status::Ok();  // the engine will say what fails
  auto has = [&](int cap) { return ((data[cap / 32].effective >> (cap % 32)) & 1) != 0; };
  if (has(CAP_SYS_ADMIN) || has(kCapCheckpointRestore)) return Status::Ok();
  return Status::Error(StatusCode::kPermission, std::string("needs root (or CAP_CHECKPOINT_RESTORE) ") + why);
}

pid_t g_restored_root = 0;
void ForwardToRestored(int sig) {
  if (g_restored_root > 0) kill(g_restored_root, sig);
}

// `roam restore`: the engine restores and holds the tree; this command is
// the restored root's parent, so it is the one to forward signals, reap
// orphans (subreaper) and wait. Returns the root's status as a shell
// reports it (128+N for signal N), or 0 with `detach`.
Result<int> RestoreAndWait(const std::string& dir, bool detach) {
  prctl(PR_SET_CHILD_SUBREAPER, 1);  // seeds' children come back to us if a seed dies
  Result<std::unique_ptr<RestoredTree>> tree = RestoredTree::Restore(dir, RestoreOptions{});
  if (!tree.ok()) return tree.status();
  const pid_t root = (*tree)->root();
  if (!detach) {
    g_restored_root = root;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = ForwardToRestored;
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2}) sigaction(sig, &sa, nullptr);
  }
  Status st = (*tree)->Release();
  if (!st.ok()) return st;
  prctl(PR_SET_CHILD_SUBREAPER, 0);
  if (detach) return 0;
  for (;;) {
    int status = 0;
    pid_t p = waitpid(root, &status, 0);
    if (p < 0 && errno == EINTR) continue;
    if (p < 0) return Status::Errno("wait for pid " + std::to_string(root));
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  }
}

}  // namespace

void AddCheckpointCommands(CLI::App& app, int* code, CommandFilter& want) {
  // What the commands read, filled in by the parse.
  static int pid = 0;
  static std::string dir;
  static bool leave_running = false, detach = false, json = false;
  if (want("check")) {
    auto* check = app.add_subcommand("check", "does this kernel have what the checkpoint engine needs");
    check->callback([code] { *code = RunCheckCommand(); });
  }
  if (want("checkpoint")) {
    auto* ck = app.add_subcommand("checkpoint", "dump a process and its descendants into an image directory");
    ck->add_option("PID", pid, "root of the tree")->required();
    ck->add_option("-D,--images-dir", dir, "image directory (created if missing)")->required();
    ck->add_flag("--leave-running", leave_running, "let the processes run on (default: kill them once dumped)");
    ck->callback([code] {
      Status may =
          NeedCheckpointRestore("to read /proc/PID/map_files; an ordinary user moves a process with roam migrate");
      if (!may.ok()) {
        *code = Fail("checkpoint", may);
        return;
      }
      Result<CheckpointReport> r = Checkpoint(pid, dir, CheckpointOptions{leave_running});
      if (!r.ok()) {
        *code = Fail("checkpoint", r.status());
        return;
      }
      fprintf(stderr, "roam checkpoint: %d process(es), %lu pages saved, %lu zero pages skipped, frozen %.1f ms\n",
              r->processes, static_cast<unsigned long>(r->pages_saved),
              static_cast<unsigned long>(r->zero_pages_skipped), r->freeze_ns / 1e6);
      *code = 0;
    });
  }
  if (want("restore")) {
    auto* rs = app.add_subcommand("restore", "bring an image back to life with the same PIDs");
    rs->add_option("-D,--images-dir", dir, "image directory")->required();
    rs->add_flag("-d,--detach", detach, "return once it runs (default: wait and exit with its status)");
    rs->callback([code] {
      Status may = NeedCheckpointRestore("to give processes their PIDs back");
      if (!may.ok()) {
        *code = Fail("restore", may);
        return;
      }
      Result<int> r = RestoreAndWait(dir, detach);
      *code = r.ok() ? *r : Fail("restore", r.status());
      if (!r.ok()) *code = 1;
    });
  }
  if (want("image")) {
    auto* image = app.add_subcommand("image", "inspect checkpoint images");
    image->require_subcommand(1);
    auto* show = image->add_subcommand("show", "what an image holds");
    show->add_option("-D,--images-dir", dir, "image directory")->required();
    show->add_flag("--json", json, "one JSON document");
    show->callback([code] {
      Result<Image> img = LoadImage(dir, /*verify_payloads=*/true);
      if (!img.ok()) {
        *code = Fail("image show", img.status());
        return;
      }
      if (json) {
        // Paths and names are the kernel's bytes: not always UTF-8.
        printf("%s\n", ImageJson(*img).dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      } else {
        printf("%s", ImageTable(*img).c_str());
      }
      *code = 0;
    });
  }
}

}  // namespace roam
