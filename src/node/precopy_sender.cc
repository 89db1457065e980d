#include "node/precopy_sender.h"

#include <spdlog/spdlog.h>

#include "common/proc_sample.h"

namespace roam {

namespace {
constexpr uint64_t kPumpBytes = 4 << 20;          // read on the engine thread in one job
constexpr size_t kLinkHighWater = 8 << 20;        // then wait until the link has sent most of it
constexpr uint64_t kWorthBytes = 4ull << 20;      // less private memory than this: stop-and-copy
}  // namespace

bool WorthPreCopy(pid_t pid) {
  Result<ProcSample> s = SampleProc(pid);
  return s.ok() && s->rss_bytes >= kWorthBytes;
}

PrecopySender::PrecopySender(EngineWorker& engine, std::shared_ptr<LinkChannel> link, pid_t pid, MoveFaults faults)
    : engine_(engine),
      link_(std::move(link)),
      pid_(pid),
      faults_(faults),
      holder_(std::make_shared<std::unique_ptr<PreCopy>>()) {}

void PrecopySender::Start(std::function<void(Status)> done) {
  done_ = std::move(done);
  auto self = shared_from_this();
  auto holder = holder_;
  pid_t pid = pid_;
  engine_.Run<Status>(
      [holder, pid]() -> Status {
        Result<std::unique_ptr<PreCopy>> pc = PreCopy::Start(pid);
        if (!pc.ok()) return pc.status();
        *holder = std::move(*pc);
        return Status::Ok();
      },
      [this, self](Status st) {
        if (!done_) return;
        if (!st.ok()) {
          spdlog::info("pid {}: no pre-copy ({}); stop-and-copy", pid_, st.message());
          return Finish(Status::Ok());
        }
        link_->set_on_drained([this, self] { Pump(); });
        NextRound();
      });
}

void PrecopySender::NextRound() {
  if (!done_) return;
  auto self = shared_from_this();
  auto holder = holder_;
  engine_.Run<Result<uint64_t>>(
      [holder]() -> Result<uint64_t> {
        if (!*holder) return Status::Error("pre-copy ended");
        return (*holder)->BeginRound();
      },
      [this, self](Result<uint64_t> next) {
        if (!done_) return;
        if (!next.ok()) return GiveUp(next.status());
        if (rounds_ > 0 && PreCopyConverged(policy_, rounds_, last_round_, *next)) {
          spdlog::info("pid {}: pre-copy done after {} round(s), {:.1f} MiB; {:.1f} MiB dirty left", pid_, rounds_,
                       static_cast<double>(bytes_sent_) / (1 << 20), static_cast<double>(*next) / (1 << 20));
          return Finish(Status::Ok());
        }
        ++rounds_;
        last_round_ = 0;
        in_round_ = true;
        Pump();
      });
}

void PrecopySender::Pump() {
  // Only inside a round: pages read are counted as sent by the PreCopy, so
  // a read that is not then sent (a pump between rounds, when the next one
  // is not to be made) would leave the target stale pages marked kept.
  if (!done_ || pumping_ || !in_round_) return;
  if (link_->closed()) return Finish(Status::Error("the link closed during pre-copy"));
  if (link_->queued_bytes() >= kLinkHighWater) return;  // on_drained calls again
  pumping_ = true;
  auto self = shared_from_this();
  auto holder = holder_;
  auto round_done = std::make_shared<bool>(false);
  engine_.Run<Result<std::vector<PageBatch>>>(
      [holder, round_done]() -> Result<std::vector<PageBatch>> {
        if (!*holder) return Status::Error("pre-copy ended");
        std::vector<PageBatch> out;
        Result<bool> r = (*holder)->Pump(kPumpBytes, &out);
        if (!r.ok()) return r.status();
        *round_done = *r;
        return out;
      },
      [this, self, round_done](Result<std::vector<PageBatch>> batches) {
        pumping_ = false;
        Sent(std::move(batches), *round_done);
      });
}

void PrecopySender::Sent(Result<std::vector<PageBatch>> batches, bool round_done) {
  if (!done_) return;
  if (!batches.ok()) return GiveUp(batches.status());
  if (link_->closed()) return Finish(Status::Error("the link closed during pre-copy"));
  for (PageBatch& b : *batches) {
    pb::LinkFrame f;
    pb::PrecopyPages* p = f.mutable_precopy_pages();
    p->set_vaddr(b.vaddr);
    p->set_piece_start(b.piece.start);
    p->set_piece_end(b.piece.end);
    p->set_round(static_cast<uint32_t>(b.round));
    bytes_sent_ += b.data.size();
    last_round_ += b.data.size();
    p->set_data(std::move(b.data));
    link_->Send(f);
  }
  if (faults_.At("source-precopy") == MoveFaults::Action::kCut) {
    link_->Close("injected fault", false);
    return Finish(Status::Error("injected fault: cut at source-precopy"));
  }
  if (round_done) {
    in_round_ = false;
    return NextRound();
  }
  Pump();
}

void PrecopySender::GiveUp(const Status& why) {
  spdlog::warn("pid {}: pre-copy stopped: {}", pid_, why.message());
  DropPreCopy(engine_, holder_);
  holder_ = std::make_shared<std::unique_ptr<PreCopy>>();  // nothing kept: the freeze sends all
  Finish(Status::Ok());
}

void PrecopySender::Cancel() {
  done_ = nullptr;
  link_->set_on_drained(nullptr);
}

void PrecopySender::Finish(Status st) {
  link_->set_on_drained(nullptr);
  if (auto d = std::move(done_)) d(std::move(st));
}

}  // namespace roam
