#include "node/migration_out.h"

#include <dirent.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "ckpt/checkpoint.h"
#include "common/file_util.h"
#include "node/image_dir.h"

namespace roam {

namespace {

constexpr size_t kChunk = 1 << 20;
// Image frames are queued on the link only up to this much: the socket's
// own buffer does the rest, and stdio of other sessions is never far behind.
constexpr size_t kLinkHighWater = 4 << 20;

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double MsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

MigrationOut::MigrationOut(asio::io_context& io, EngineWorker& engine, const LinkIdentity& self,
                           std::shared_ptr<GuestProcess> guest, std::string image_dir, MoveFaults faults)
    : io_(io),
      engine_(engine),
      self_(self),
      guest_(std::move(guest)),
      dir_(std::move(image_dir)),
      faults_(faults),
      tree_(std::make_shared<std::unique_ptr<FrozenTree>>()) {}

MigrationOut::~MigrationOut() {
  if (file_fd_ >= 0) close(file_fd_);
}

// ---- freeze -> dump --------------------------------------------------------------------

void MigrationOut::Start(const pb::MoveOut& order, std::function<void()> on_end) {
  order_ = order;
  on_end_ = std::move(on_end);
  auto self = shared_from_this();
  guest_->set_move_handlers(
      [this, self](const pb::StreamFrame& f) {
        if (f.has_move_decision() && frozen_sent_) Decide(f.move_decision().commit());
      },
      [this, self] {
        // The home link is gone: nobody may resume this copy any more.
        if (ended_) return;
        spdlog::warn("{}: home link lost during the move to {}; killing the frozen copy", guest_->gpid(), order_.to());
        Decide(true);
      });
  guest_->BeginMove();
  spdlog::info("{}: moving to {}", guest_->gpid(), order_.to());
  const pid_t pid = guest_->pid();
  auto tree = tree_;
  const std::string dir = dir_;
  engine_.Run<Result<double>>(
      [tree, pid, dir]() -> Result<double> {
        auto t0 = std::chrono::steady_clock::now();
        Result<std::unique_ptr<FrozenTree>> frozen = FrozenTree::Freeze(pid);
        if (!frozen.ok()) return frozen.status();
        Result<CheckpointReport> r = (*frozen)->Dump(dir);
        Status st = r.ok() ? (*frozen)->Seal() : r.status();
        if (!st.ok()) return st;  // resumed as `frozen` goes, on this thread
        *tree = std::move(*frozen);
        return MsSince(t0);
      },
      [this, self](Result<double> r) { Dumped(std::move(r)); });
}

void MigrationOut::Dumped(Result<double> dump_ms) {
  if (ended_) return;
  if (!dump_ms.ok()) return Fail(dump_ms.status().message());
  dump_ms_ = *dump_ms;
  frozen_at_ms_ = WallMs() - static_cast<int64_t>(dump_ms_);
  // Everything the tree wrote before the freeze goes home first, so that it
  // comes before anything the target's copy writes.
  guest_->DrainOutput();
  if (faults_.At("source-frozen") == MoveFaults::Action::kCut) return Fail("injected fault: cut at source-frozen");
  Result<std::vector<std::string>> files = ListImageFiles(dir_);
  if (!files.ok()) return Fail(files.status().message());
  files_ = std::move(*files);
  auto self = shared_from_this();
  ConnectLink(io_, order_.address(), self_, [this, self](Result<std::shared_ptr<LinkChannel>> r, const std::string&) {
    if (ended_) {
      if (r.ok()) (*r)->Close("late", false);
      return;
    }
    if (!r.ok()) return Fail("cannot reach " + order_.to() + ": " + r.status().message());
    target_ = *r;
    target_->set_handlers(
        [this, self](pb::LinkFrame& f) {
          if (f.has_reply()) return OnTargetReply(f.reply());
          Fail("unexpected frame from " + order_.to());
        },
        [this, self](const std::string& why) {
          if (!frozen_sent_) Fail("lost the link to " + order_.to() + ": " + why);
        });
    pb::LinkFrame req;
    req.mutable_request()->mutable_move_in()->set_gpid(guest_->gpid());
    target_->Send(req);
    SendImage();
  });
}

// ---- stream the image ------------------------------------------------------------------

void MigrationOut::SendImage() {
  auto self = shared_from_this();
  target_->set_on_drained([this, self] { SendNextChunk(); });
  SendNextChunk();
}

void MigrationOut::SendNextChunk() {
  if (ended_ || target_->closed()) return;
  std::string buf;
  while (target_->queued_bytes() < kLinkHighWater) {
    if (file_index_ == files_.size()) {
      // The image is complete: the input the process has not read follows.
      target_->set_on_drained(nullptr);
      pb::LinkFrame end;
      pb::ImageEnd* e = end.mutable_image_end();
      bool eof = false;
      guest_->StdinLeftovers(e->mutable_stdin_taken(), e->mutable_stdin_pending(), &eof);
      e->set_stdin_eof(eof);
      e->set_dump_ms(dump_ms_);
      e->set_frozen_at_ms(frozen_at_ms_);
      target_->Send(end);
      ++file_index_;
      return;
    }
    if (file_index_ > files_.size()) return;
    const std::string& name = files_[file_index_];
    if (file_fd_ < 0) {
      file_fd_ = open((dir_ + "/" + name).c_str(), O_RDONLY | O_CLOEXEC);
      if (file_fd_ < 0) return Fail("open " + dir_ + "/" + name + ": " + strerror(errno));
      file_offset_ = 0;
    }
    buf.resize(kChunk);
    ssize_t n = pread(file_fd_, buf.data(), buf.size(), static_cast<off_t>(file_offset_));
    if (n < 0) return Fail("read " + dir_ + "/" + name + ": " + strerror(errno));
    if (n > 0 || file_offset_ == 0) {  // an empty file is sent as one empty chunk
      pb::LinkFrame f;
      pb::ImageChunk* c = f.mutable_image_chunk();
      c->set_name(name);
      c->set_offset(file_offset_);
      c->set_data(buf.data(), static_cast<size_t>(n));
      target_->Send(f);
      bytes_sent_ += static_cast<uint64_t>(n);
      file_offset_ += static_cast<uint64_t>(n);
      if (bytes_sent_ > 0 && faults_.At("source-streaming") == MoveFaults::Action::kCut) {
        target_->Close("injected fault", false);
        return Fail("injected fault: cut at source-streaming");
      }
    }
    if (n < static_cast<ssize_t>(kChunk)) {
      close(file_fd_);
      file_fd_ = -1;
      ++file_index_;
    }
  }
}

void MigrationOut::OnTargetReply(const pb::LinkReply& reply) {
  if (ended_ || frozen_sent_) return;
  if (!reply.error().empty()) return Fail(order_.to() + ": " + reply.error());
  // The target holds a restored copy. From here the home decides.
  frozen_sent_ = true;
  target_->set_handlers(nullptr, nullptr);
  target_->Close("image delivered");
  RemoveImageDir(dir_);
  pb::StreamFrame f;
  f.mutable_move_frozen()->set_bytes_sent(bytes_sent_);
  f.mutable_move_frozen()->set_dump_ms(dump_ms_);
  SendHome(std::move(f));
  faults_.At("source-handed");
}

// ---- outcomes --------------------------------------------------------------------------

void MigrationOut::Fail(const std::string& why) {
  if (ended_ || frozen_sent_) return;
  ended_ = true;
  spdlog::warn("{}: move to {} failed: {}; it runs on here", guest_->gpid(), order_.to(), why);
  if (target_) {
    target_->set_handlers(nullptr, nullptr);
    target_->Close("move failed", false);
  }
  RemoveImageDir(dir_);
  auto self = shared_from_this();
  auto tree = tree_;
  engine_.Run<bool>(
      [tree]() {
        if (*tree) (*tree)->Resume();
        tree->reset();
        return true;
      },
      [this, self, why](bool) {
        guest_->MoveAborted();
        pb::StreamFrame f;
        f.set_move_failed(why);
        SendHome(std::move(f));
        Finish();
      });
}

void MigrationOut::Decide(bool commit) {
  if (ended_) return;
  ended_ = true;
  spdlog::info("{}: move to {} {}", guest_->gpid(), order_.to(), commit ? "committed" : "aborted by home");
  if (target_) {
    target_->set_handlers(nullptr, nullptr);
    target_->Close("done", false);
  }
  RemoveImageDir(dir_);
  auto self = shared_from_this();
  auto tree = tree_;
  engine_.Run<bool>(
      [tree, commit]() {
        if (*tree) commit ? (*tree)->Kill() : (*tree)->Resume();
        tree->reset();
        return true;
      },
      [this, self, commit](bool) {
        if (commit) {
          guest_->MovedAway();
        } else {
          guest_->MoveAborted();
        }
        Finish();
      });
}

void MigrationOut::SendHome(pb::StreamFrame f) { guest_->SendToHome(f); }

void MigrationOut::Finish() {
  if (auto f = std::move(on_end_)) f();
}

}  // namespace roam
