#include "node/image_sender.h"

namespace roam {

namespace {

constexpr size_t kLinkHighWater = 4 << 20;

}  // namespace

ImageSender::ImageSender(asio::io_context& io, std::shared_ptr<LinkSession> link, MoveFaults faults,
                         std::shared_ptr<CodecChooser> chooser)
    : io_(io), link_(std::move(link)), faults_(faults), chooser_(std::move(chooser)) {}

ImageSender::~ImageSender() { pipe_->Cancel(); }

void ImageSender::Start(std::function<void(Status)> done) {
  done_ = std::move(done);
  auto self = shared_from_this();
  link_->set_on_drained([this, self] { SendSome(); });
  // The pipe wakes the loop from the engine thread. The wake holds the
  // sender only weakly: a move that ended must not be kept by its pipe.
  std::weak_ptr<ImageSender> weak = self;
  asio::io_context* io = &io_;
  pipe_->set_wake([io, weak] {
    asio::post(*io, [weak] {
      if (auto s = weak.lock()) s->SendSome();
    });
  });
  SendSome();
}

void ImageSender::EndOfImage(std::function<void(pb::ImageEnd*)> fill_end) {
  ending_ = true;
  fill_end_ = std::move(fill_end);
  SendSome();
}

void ImageSender::Cancel() {
  pipe_->Cancel();
  link_->set_on_drained(nullptr);
  done_ = nullptr;
}

void ImageSender::SendSome() {
  if (!done_) return;
  if (link_->closed()) return Finish(Status::Error("the link closed while the image was sent"));
  ImagePipe::Piece piece;
  while (link_->queued_bytes() < kLinkHighWater) {
    if (!pipe_->Take(&piece)) {
      if (!ending_) return;  // the dump goes on; the pipe wakes us
      pb::LinkFrame end;
      if (fill_end_) fill_end_(end.mutable_image_end());
      link_->Send(end);
      return Finish(Status::Ok());
    }
    pb::LinkFrame f;
    pb::ImageChunk* c = f.mutable_image_chunk();
    c->set_name(piece.name);
    c->set_offset(piece.offset);
    chooser_->set_link_bps(link_->drain_bps());
    PackedPiece p = Pack(chooser_->Next(), std::move(piece.data));
    chooser_->Learn(p);
    if (p.codec != Codec::kNone) {
      c->set_codec(static_cast<int>(p.codec));
      c->set_raw_size(p.raw_size);
      bytes_compressed_ += p.raw_size;
    }
    bytes_sent_ += p.data.size();
    c->set_data(std::move(p.data));
    link_->Send(f);
    if (faults_.At("source-streaming") == MoveFaults::Action::kCut) {
      link_->Close("injected fault", false);
      return Finish(Status::Error("injected fault: cut at source-streaming"));
    }
  }
}

void ImageSender::Finish(Status st) {
  link_->set_on_drained(nullptr);
  pipe_->Cancel();
  if (!st.ok() && !link_->closed()) link_->Close("image not sent", false);
  if (auto d = std::move(done_)) d(std::move(st));
}

}  // namespace roam
