#include "node/precopy_sender.h"

#include <spdlog/spdlog.h>

#include "ckpt/kernel_features.h"
#include "ckpt/dirty_tracker.h"
#include "common/proc_maps.h"
#include "common/proc_stat.h"

namespace roam {

namespace {
constexpr uint64_t kPumpBytes = 4 << 20;          // read on the engine thread in one job
constexpr size_t kLinkHighWater = 8 << 20;        // then wait until the link has sent most of it
}  // namespace

pb::LinkFrame MoveInRequest(const std::string& gpid, pid_t root, const std::vector<pb::FileIdentity>& files) {
  pb::LinkFrame req;
  pb::MoveIn* in = req.mutable_request()->mutable_move_in();
  in->set_gpid(gpid);
  in->set_precopy_pid(root);
  in->set_xcr0(ProbeXsave().xcr0);
  // What pre-copy may stage (precopy.h), in every process of the tree.
  uint64_t span = 0;
  for (pid_t pid : ReadProcessTree(root)) {
    Result<std::vector<VmaInfo>> maps = ReadMaps(pid);
    if (!maps.ok()) continue;
    for (const VmaInfo& v : *maps) {
      if (IsPreCopied(v)) span += v.end - v.start;
    }
  }
  in->set_precopy_span(span);
  for (const pb::FileIdentity& f : files) *in->add_files() = f;
  return req;
}

PrecopySender::PrecopySender(EngineWorker& engine, std::shared_ptr<LinkSession> link, pid_t pid, bool tree,
                             MoveFaults faults, std::shared_ptr<CodecChooser> chooser)
    : engine_(engine),
      link_(std::move(link)),
      pid_(pid),
      tree_(tree),
      faults_(faults),
      holder_(std::make_shared<std::unique_ptr<PreCopy>>()),
      chooser_(std::move(chooser)) {}

void PrecopySender::Start(std::function<void(Status)> done) {
  done_ = std::move(done);
  auto self = shared_from_this();
  auto holder = holder_;
  pid_t pid = pid_;
  bool tree = tree_;
  engine_.Run<Status>(
      [holder, pid, tree]() -> Status {
        Result<std::unique_ptr<PreCopy>> pc = PreCopy::Start(pid, tree);
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
          return Sync();
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
  chooser_->set_link_bps(link_->drain_bps());
  const Codec codec = chooser_->Next();
  engine_.Run<Result<std::vector<Packed>>>(
      [holder, round_done, codec]() -> Result<std::vector<Packed>> {
        if (!*holder) return Status::Error("pre-copy ended");
        std::vector<PageBatch> batches;
        Result<bool> r = (*holder)->Pump(kPumpBytes, &batches);
        if (!r.ok()) return r.status();
        *round_done = *r;
        // Compressed here, on the engine thread, while the loop sends the
        // previous batches.
        std::vector<Packed> out;
        out.reserve(batches.size());
        for (PageBatch& b : batches) {
          PackedPiece p = Pack(codec, std::move(b.data));
          out.push_back(Packed{std::move(b), std::move(p)});
        }
        return out;
      },
      [this, self, round_done](Result<std::vector<Packed>> batches) { Sent(std::move(batches), *round_done); });
}

void PrecopySender::Sent(Result<std::vector<Packed>> batches, bool round_done) {
  if (!done_) return;
  if (!batches.ok()) {
    pumping_ = false;
    return GiveUp(batches.status());
  }
  if (link_->closed()) {
    pumping_ = false;
    return Finish(Status::Error("the link closed during pre-copy"));
  }
  for (Packed& b : *batches) {
    pb::LinkFrame f;
    pb::PrecopyPages* p = f.mutable_precopy_pages();
    p->set_vaddr(b.batch.vaddr);
    if (b.batch.pid != pid_) p->set_pid(b.batch.pid);
    p->set_piece_start(b.batch.piece.start);
    p->set_piece_end(b.batch.piece.end);
    p->set_round(static_cast<uint32_t>(b.batch.round));
    chooser_->Learn(b.piece);
    if (b.piece.codec != Codec::kNone) {
      p->set_codec(static_cast<int>(b.piece.codec));
      p->set_raw_size(b.piece.raw_size);
      bytes_compressed_ += b.piece.raw_size;
    }
    bytes_sent_ += b.piece.data.size();
    memory_sent_ += b.piece.raw_size;
    last_round_ += b.piece.raw_size;  // convergence is judged on memory, not on the wire
    p->set_data(std::move(b.piece.data));
    link_->Send(f);
  }
  // Only now may another Pump start: one started while these frames were
  // handed over could read the next round's pages before this round ends.
  pumping_ = false;
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

void PrecopySender::Sync() {
  if (!tree_) return Finish(Status::Ok());  // an older target: it answers nothing
  if (link_->closed()) return Finish(Status::Error("the link closed during pre-copy"));
  syncing_ = true;
  pb::LinkFrame f;
  f.mutable_precopy_sync();
  link_->Send(f);
}

void PrecopySender::Synced() {
  if (!syncing_) return;
  syncing_ = false;
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
