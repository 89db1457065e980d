#include "node/backlog_wait.h"

#include <spdlog/spdlog.h>

#include "ckpt/files.h"

namespace roam {

void BacklogWait::Run(pid_t pid, std::string gpid, std::function<void(const std::string&)> waiting,
                      std::function<void()> then) {
  pid_ = pid;
  gpid_ = std::move(gpid);
  waiting_ = std::move(waiting);
  then_ = std::move(then);
  drain_.emplace(std::chrono::steady_clock::now());
  told_ = false;
  Look();
}

void BacklogWait::Cancel() {
  timer_.cancel();
  waiting_ = nullptr;
  then_ = nullptr;
}

void BacklogWait::Look() {
  if (!then_) return;
  const auto now = std::chrono::steady_clock::now();
  Result<SocketBacklog> backlog = SocketBacklogOf(pid_);
  const bool freeze = drain_->MayFreeze(backlog, now);
  if (backlog.ok() && !backlog->empty()) {
    if (!told_) spdlog::info("{}: waiting for it to take {} before it freezes", gpid_, backlog->Text());
    told_ = true;
    if (freeze) spdlog::info("{}: still {}; freezing all the same", gpid_, backlog->Text());
  }
  if (freeze) {
    std::function<void()> then = std::move(then_);
    Cancel();
    return then();
  }
  if (waiting_) waiting_(backlog->Text());
  timer_.expires_after(BacklogDrain::kEvery);
  timer_.async_wait([this](asio::error_code ec) {
    if (!ec) Look();
  });
}

}  // namespace roam
