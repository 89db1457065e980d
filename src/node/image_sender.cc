#include "node/image_sender.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "node/image_dir.h"

namespace roam {

namespace {
constexpr size_t kChunk = 1 << 20;
constexpr size_t kLinkHighWater = 4 << 20;
}  // namespace

ImageSender::ImageSender(std::shared_ptr<LinkChannel> link, std::string dir, MoveFaults faults,
                         std::shared_ptr<CodecChooser> chooser)
    : link_(std::move(link)), dir_(std::move(dir)), faults_(faults), chooser_(std::move(chooser)) {}

ImageSender::~ImageSender() {
  if (fd_ >= 0) close(fd_);
}

void ImageSender::Start(std::function<void(pb::ImageEnd*)> fill_end, std::function<void(Status)> done) {
  fill_end_ = std::move(fill_end);
  done_ = std::move(done);
  Result<std::vector<std::string>> files = ListImageFiles(dir_);
  if (!files.ok()) return Finish(files.status());
  files_ = std::move(*files);
  auto self = shared_from_this();
  link_->set_on_drained([this, self] { SendSome(); });
  SendSome();
}

void ImageSender::SendSome() {
  if (!done_) return;
  if (link_->closed()) return Finish(Status::Error("the link closed while the image was sent"));
  std::string buf;
  while (link_->queued_bytes() < kLinkHighWater) {
    if (index_ == files_.size()) {
      pb::LinkFrame end;
      if (fill_end_) fill_end_(end.mutable_image_end());
      link_->Send(end);
      return Finish(Status::Ok());
    }
    const std::string& name = files_[index_];
    if (fd_ < 0) {
      fd_ = open((dir_ + "/" + name).c_str(), O_RDONLY | O_CLOEXEC);
      if (fd_ < 0) return Finish(Status::Errno("open " + dir_ + "/" + name));
      offset_ = 0;
    }
    buf.resize(kChunk);
    ssize_t n = pread(fd_, buf.data(), buf.size(), static_cast<off_t>(offset_));
    if (n < 0) return Finish(Status::Errno("read " + dir_ + "/" + name));
    if (n > 0 || offset_ == 0) {  // an empty file is sent as one empty chunk
      pb::LinkFrame f;
      pb::ImageChunk* c = f.mutable_image_chunk();
      c->set_name(name);
      c->set_offset(offset_);
      chooser_->set_link_bps(link_->drain_bps());
      PackedPiece p = Pack(chooser_->Next(), std::string(buf.data(), static_cast<size_t>(n)));
      chooser_->Learn(p);
      if (p.codec != Codec::kNone) {
        c->set_codec(static_cast<int>(p.codec));
        c->set_raw_size(p.raw_size);
        bytes_compressed_ += p.raw_size;
      }
      bytes_sent_ += p.data.size();
      c->set_data(std::move(p.data));
      link_->Send(f);
      offset_ += static_cast<uint64_t>(n);
      if (faults_.At("source-streaming") == MoveFaults::Action::kCut) {
        link_->Close("injected fault", false);
        return Finish(Status::Error("injected fault: cut at source-streaming"));
      }
    }
    if (n < static_cast<ssize_t>(kChunk)) {
      close(fd_);
      fd_ = -1;
      ++index_;
    }
  }
}

void ImageSender::Finish(Status st) {
  link_->set_on_drained(nullptr);
  if (!st.ok() && !link_->closed()) link_->Close("image not sent", false);
  if (auto d = std::move(done_)) d(std::move(st));
}

}  // namespace roam
