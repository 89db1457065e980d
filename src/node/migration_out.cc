#include "node/migration_out.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "common/file_util.h"
#include "node/file_identity.h"
#include "node/image_sender.h"
#include "node/move_engine.h"
#include "node/move_in_check.h"
#include "node/precopy_sender.h"
#include "wire/reply.h"

namespace roam {

namespace {

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

MigrationOut::MigrationOut(asio::io_context& io, EngineWorker& engine, LinkPool& links,
                           std::shared_ptr<GuestProcess> guest, MoveFaults faults, CodecChooser codec,
                           JobAddresses* addresses)
    : io_(io),
      engine_(engine),
      links_(links),
      guest_(std::move(guest)),
      faults_(faults),
      tree_(NewFrozenHolder()),
      codec_(std::make_shared<CodecChooser>(codec)),
      address_(addresses, guest_->gpid(), guest_->spawn().spec().address()),
      backlog_(io) {}

MigrationOut::~MigrationOut() = default;

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
  spdlog::info("{}: moving to {}", guest_->gpid(), order_.to());
  progress_timer_ = std::make_unique<asio::steady_timer>(io_);
  ReportProgress("checking the target");
  // First the target checks that it has the files the tree uses; nothing
  // is frozen until it says so.
  Result<std::vector<pb::FileIdentity>> files = TreeFileIdentities(guest_->pid(), &carried_);
  if (!files.ok()) return Fail(files.status());
  files_sent_ = std::move(*files);
  links_.Open(order_.address(),
              [this, self](Result<std::shared_ptr<LinkSession>> r, const std::string&) {
                if (ended_) {
                  if (r.ok()) (*r)->Close("late", false);
                  return;
                }
                if (!r.ok()) return Fail(Status::Error(StatusCode::kUnavailable, "cannot reach " + order_.to() + ": " + r.status().message()));
                target_ = *r;
                target_->set_handlers(
                    [this, self](pb::LinkFrame& f) {
                      if (f.has_reply()) return OnTargetReply(f.reply());
                      if (f.has_precopy_synced()) return precopy_ ? precopy_->Synced() : void();
                      Fail(Status::Error(StatusCode::kInvalid, "unexpected frame from " + order_.to()));
                    },
                    [this, self](const std::string& why) {
                      if (!frozen_sent_) Fail(Status::Error(StatusCode::kUnavailable, "lost the link to " + order_.to() + ": " + why));
                    });
                target_->Send(MoveInRequest(guest_->gpid(), guest_->pid(), files_sent_));
              });
}

void MigrationOut::WaitForInputRead(bool precopy) {
  const size_t unread = guest_->UnreadInput();
  const auto now = std::chrono::steady_clock::now();
  if (unread < unread_) unread_since_ = now;  // it reads on
  unread_ = unread;
  if (unread == 0 || now - unread_since_ > kUnreadPatience || now - unread_start_ > kUnreadLimit) {
    return precopy ? PreCopy() : Settle();  // what is left refuses the move at home
  }
  ReportProgress("waiting until it has read its input");
  auto self = shared_from_this();
  input_timer_ = std::make_unique<asio::steady_timer>(io_);
  input_timer_->expires_after(std::chrono::milliseconds(10));
  input_timer_->async_wait([this, self, precopy](asio::error_code ec) {
    if (ec || ended_) return;
    WaitForInputRead(precopy);
  });
}

void MigrationOut::PreCopy() {
  auto self = shared_from_this();
  precopy_ = std::make_shared<PrecopySender>(engine_, target_, guest_->pid(), precopy_tree_, faults_, codec_);
  ReportProgress("pre-copy");
  precopy_->Start([this, self](Status st) {
    if (ended_) return;
    if (!st.ok()) return Fail(st);
    Settle();
  });
}

void MigrationOut::Settle() {
  address_.Freezing(guest_->pid());
  auto self = shared_from_this();
  backlog_.Run(
      guest_->pid(), guest_->gpid(), [this, self](const std::string& what) { ReportProgress("waiting for it to take " + what); },
      [this, self] {
        if (!ended_) Freeze();
      });
}

void MigrationOut::Freeze() {
  auto self = shared_from_this();
  guest_->BeginMove();
  ReportProgress("frozen");
  // The image goes on the link as the dump reads it.
  sender_ = std::make_shared<ImageSender>(io_, target_, faults_, codec_);
  sender_->Start([this, self](Status st) {
    bytes_sent_ = sender_->bytes_sent() + (precopy_ ? precopy_->bytes_sent() : 0);
    if (!st.ok()) Fail(st);
  });
  FreezeAndDump(
      engine_, guest_->pid(), sender_->pipe(), tree_, [this, self](Result<double> r) { Dumped(std::move(r)); },
      DumpOptions(), precopy_ ? precopy_->holder() : nullptr);
}

void MigrationOut::Dumped(Result<double> dump_ms) {
  if (ended_) return;
  if (!dump_ms.ok()) return Fail(dump_ms.status());
  dump_ms_ = *dump_ms;
  frozen_at_ms_ = WallMs() - static_cast<int64_t>(dump_ms_);
  // Everything the tree wrote before the freeze goes home first, so that it
  // comes before anything the target's copy writes.
  guest_->DrainOutput();
  // Its own address goes with it: the target puts it up before restoring.
  address_.Leave();
  if (faults_.At("source-frozen") == MoveFaults::Action::kCut) return Fail(Status::Error(StatusCode::kUnavailable, "injected fault: cut at source-frozen"));
  sender_->EndOfImage([this](pb::ImageEnd* e) {
    // The input the process has not read goes with the image.
    bool eof = false;
    guest_->StdinLeftovers(e->mutable_stdin_taken(), e->mutable_stdin_pending(), &eof);
    e->set_stdin_eof(eof);
    (void)guest_->RecordTerminal(e);
    e->set_dump_ms(dump_ms_);
    e->set_frozen_at_ms(frozen_at_ms_);
  });
}

void MigrationOut::OnTargetReply(const pb::LinkReply& reply) {
  if (ended_ || frozen_sent_) return;
  if (!reply.error().empty()) {
    if (!checked_ && RelistIfStale(reply, *target_, guest_->gpid(), guest_->pid(), &files_sent_, &relists_)) return;
    return Fail(ReplyStatus(reply).Prefixed(order_.to() + ": "));
  }
  if (!checked_) {  // the first answer: the files are there
    checked_ = true;
    const bool precopy = reply.precopy();
    precopy_tree_ = reply.precopy_tree();
    if (order_.to() != guest_->home()) return precopy ? PreCopy() : Settle();
    // Home: input it was given but has not read cannot be put back into
    // the user's terminal or pipe, and the deputy gives no more (the home
    // holds it there): it runs on until it has read what it has, as long
    // as it reads.
    unread_ = guest_->UnreadInput();
    unread_since_ = unread_start_ = std::chrono::steady_clock::now();
    return WaitForInputRead(precopy);
  }
  // The target holds a restored copy. From here the home decides.
  frozen_sent_ = true;
  target_->set_handlers(nullptr, nullptr);
  target_->Close("image delivered");
  pb::StreamFrame f;
  f.mutable_move_frozen()->set_bytes_sent(bytes_sent_);
  f.mutable_move_frozen()->set_dump_ms(dump_ms_);
  f.mutable_move_frozen()->set_rounds(1 + (precopy_ ? precopy_->rounds() : 0));
  f.mutable_move_frozen()->set_precopy_bytes(precopy_ ? precopy_->memory_sent() : 0);
  f.mutable_move_frozen()->set_bytes_compressed((precopy_ ? precopy_->bytes_compressed() : 0) +
                                                (sender_ ? sender_->bytes_compressed() : 0));
  SendHome(std::move(f));
  faults_.At("source-handed");
}

// ---- outcomes --------------------------------------------------------------------------

void MigrationOut::Fail(const Status& why) {
  if (ended_ || frozen_sent_) return;
  ended_ = true;
  spdlog::warn("{}: move to {} failed: {}; it runs on here", guest_->gpid(), order_.to(), why.message());
  if (precopy_) {
    precopy_->Cancel();
    DropPreCopy(engine_, precopy_->holder());
  }
  // A dump waiting for room in the pipe fails at once, so the engine is
  // free to resume the tree.
  if (sender_) sender_->Cancel();
  if (target_) {
    target_->set_handlers(nullptr, nullptr);
    // The target tells the home too, and sooner than this node can (the
    // process resumes first): it passes on this reason rather than "lost
    // the link". Not behind a queue of pages, though.
    const bool flush = !target_->closed() && target_->queued_bytes() < (1u << 20);
    if (flush) {
      pb::LinkFrame reason;
      SetReplyError(reason.mutable_reply(), why);
      target_->Send(reason);
    }
    target_->Close("move failed", flush);
  }
  auto self = shared_from_this();
  address_.Back();
  LetGo(engine_, tree_, /*kill=*/false, [this, self, why] {
    guest_->MoveAborted();
    pb::StreamFrame f;
    f.set_move_failed(why.message());
    f.set_code(static_cast<int>(why.code()));
    SendHome(std::move(f));
    Finish();
  });
}

void MigrationOut::Decide(bool commit) {
  if (ended_) return;
  ended_ = true;
  spdlog::info("{}: move to {} {}", guest_->gpid(), order_.to(), commit ? "committed" : "aborted by home");
  if (commit) guest_->MoveCommitted();
  if (target_) {
    target_->set_handlers(nullptr, nullptr);
    target_->Close("done", false);
  }
  auto self = shared_from_this();
  if (!commit) address_.Back();
  LetGo(engine_, tree_, /*kill=*/commit, [this, self, commit] {
    if (commit) {
      RemoveCarriedFiles(guest_->gpid(), carried_, "it went with the process");
      guest_->MovedAway();
    } else {
      guest_->MoveAborted();
    }
    Finish();
  });
}

void MigrationOut::SendHome(pb::StreamFrame f) {
  f.set_move_id(order_.move_id());
  guest_->SendToHome(f);
}

void MigrationOut::ReportProgress(const std::string& phase) {
  if (ended_ || frozen_sent_) return;
  pb::StreamFrame f;
  pb::MoveProgress* p = f.mutable_move_progress();
  p->set_phase(phase);
  const uint32_t rounds = precopy_ ? static_cast<uint32_t>(precopy_->rounds()) : 0;
  p->set_rounds(phase == "frozen" || sender_ ? rounds + 1 : rounds);
  p->set_bytes_sent((precopy_ ? precopy_->bytes_sent() : 0) + (sender_ ? sender_->bytes_sent() : 0));
  SendHome(std::move(f));
  auto self = shared_from_this();
  progress_timer_->expires_after(std::chrono::milliseconds(250));
  progress_timer_->async_wait([this, self](asio::error_code ec) {
    if (!ec) ReportProgress("");
  });
}

void MigrationOut::Finish() {
  backlog_.Cancel();
  address_.Done();
  if (progress_timer_) progress_timer_->cancel();
  if (auto f = std::move(on_end_)) f();
}

}  // namespace roam
