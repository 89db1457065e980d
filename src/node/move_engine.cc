#include "node/move_engine.h"

#include <asio.hpp>
#include <chrono>

#include <spdlog/spdlog.h>

#include "ckpt/checkpoint.h"
#include "ckpt/precopy.h"
#include "ckpt/restore.h"

namespace roam {

FrozenHolder NewFrozenHolder() { return std::make_shared<std::unique_ptr<FrozenTree>>(); }

void FreezeAndDump(EngineWorker& engine, pid_t pid, std::shared_ptr<ImageSink> sink, FrozenHolder tree,
                   std::function<void(Result<double>)> done, DumpOptions options, PreCopyHolder precopy) {
  engine.Run<Result<double>>(
      [tree, pid, sink, options, precopy]() mutable -> Result<double> {
        auto t0 = std::chrono::steady_clock::now();
        Result<std::unique_ptr<FrozenTree>> frozen = FrozenTree::Freeze(pid);
        if (!frozen.ok()) {
          if (precopy) precopy->reset();
          return frozen.status();
        }
        if (precopy && *precopy) {
          // What the target holds right is left out. If that cannot be
          // told, nothing is kept: the image carries everything.
          Result<KeptPages> kept = (*precopy)->Finish();
          if (kept.ok()) {
            options.kept = std::move(*kept);
          } else {
            spdlog::warn("pid {}: pre-copy could not finish ({}); the image carries all its memory", pid,
                         kept.status().message());
          }
          precopy->reset();
        }
        Result<CheckpointReport> r = (*frozen)->Dump(*sink, options);
        Status st = r.ok() ? (*frozen)->Seal() : r.status();
        if (!st.ok()) return st;  // resumed as `frozen` goes, on this thread
        *tree = std::move(*frozen);
        return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      },
      std::move(done));
}

void DropPreCopy(EngineWorker& engine, PreCopyHolder precopy) {
  if (!precopy) return;
  engine.Post([precopy] { precopy->reset(); });
}

void LetGo(EngineWorker& engine, FrozenHolder tree, bool kill, std::function<void()> done) {
  engine.Run<bool>(
      [tree, kill]() {
        if (*tree && kill) {
          (*tree)->Kill();
          (*tree)->RemoveCarried();  // its System V objects went with it
        } else if (*tree) {
          (*tree)->Resume();
        }
        tree->reset();
        return true;
      },
      [done = std::move(done)](bool) {
        if (done) done();
      });
}

void LockAndRelease(EngineWorker& engine, RestoredHolder tree, std::function<void(const std::string&)> waiting,
                    std::function<void(Result<pid_t>)> done) {
  engine.Run<Result<pid_t>>(
      [tree]() -> Result<pid_t> {
        if (!*tree) return Status::Error("nothing restored");
        Status st = (*tree)->TakeLocks();
        if (st.code() == StatusCode::kBusy) return st;  // tried again
        // Past the commit the copy here is the only one: it runs on.
        if (!st.ok()) spdlog::error("pid {}: runs on without a file lock: {}", (*tree)->root(), st.message());
        st = (*tree)->Release();
        pid_t root = (*tree)->root();
        tree->reset();  // released: the processes are on their own
        if (!st.ok()) return st;
        return root;
      },
      [&engine, tree, waiting = std::move(waiting), done = std::move(done)](Result<pid_t> r) mutable {
        if (r.ok() || r.status().code() != StatusCode::kBusy) return done(std::move(r));
        if (waiting) {
          waiting(r.status().message());
          waiting = nullptr;
        }
        auto timer = std::make_shared<asio::steady_timer>(engine.io(), std::chrono::milliseconds(5));
        timer->async_wait([&engine, tree, timer, done = std::move(done)](asio::error_code) mutable {
          LockAndRelease(engine, tree, nullptr, std::move(done));
        });
      });
}

}  // namespace roam
