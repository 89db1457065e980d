#include "node/precopy_staging.h"

#include "node/page_codec.h"

namespace roam {

void StagingWriter::Post(pb::PrecopyPages& p, const std::shared_ptr<LinkSession>& source) {
  auto data = std::make_shared<std::string>(std::move(*p.mutable_data()));
  const int codec = p.codec();
  const uint64_t raw_size = p.raw_size();
  const uint64_t vaddr = p.vaddr();
  const pid_t owner = p.pid();
  const PageRange piece{p.piece_start(), p.piece_end()};
  *backlog_ += data->size();
  if (*backlog_ > (64u << 20)) source->Pause();
  auto staging = staging_;
  engine_.Run<bool>(
      [staging, data, owner, vaddr, piece, codec, raw_size]() {
        if (!staging->stage || !staging->error.ok()) return false;
        Result<std::string> pages = Unpack(codec, std::move(*data), raw_size);  // on the engine thread
        if (!pages.ok()) {
          staging->error = pages.status();
          return false;
        }
        staging->error = staging->stage->Write(owner, vaddr, pages->data(), pages->size(), piece);
        return staging->error.ok();
      },
      [backlog = backlog_, source, n = data->size()](bool) {
        *backlog -= n;
        if (*backlog <= (16u << 20) && !source->closed()) source->Resume();
      });
}

void StagingWriter::WhenWritten(std::function<void()> done) {
  // The engine runs its jobs in order: this one comes after every write.
  engine_.Run<bool>([] { return true; }, [done = std::move(done)](bool) { done(); });
}

void AnswerPrecopySync(StagingWriter* writer, std::shared_ptr<LinkSession> source, std::function<bool()> ended) {
  auto answer = [source, ended = std::move(ended)] {
    if (ended() || source->closed()) return;
    pb::LinkFrame f;
    f.mutable_precopy_synced();
    source->Send(f);
  };
  if (writer == nullptr) return answer();
  writer->WhenWritten(std::move(answer));
}

}  // namespace roam
