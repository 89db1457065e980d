#include "node/remote_run.h"

#include <signal.h>
#include <spdlog/spdlog.h>

namespace roam {

namespace {
constexpr size_t kClientHighWater = 256 << 10;
}

RemoteRun::RemoteRun(std::shared_ptr<ClientChannel> client, std::shared_ptr<LinkChannel> link,
                     HomeProcess* record)
    : client_(std::move(client)), link_(std::move(link)), record_(record) {}

void RemoteRun::Start(std::function<void()> on_end) {
  on_end_ = std::move(on_end);
  auto self = shared_from_this();
  link_->set_handlers([this, self](pb::LinkFrame& f) { FromLink(f); },
                      [this, self](const std::string& why) {
                        if (!exit_seen_) NodeLost("lost the connection to " + record_->where + " (" + why + ")");
                      });
  client_->set_on_drained([this, self] { link_->Resume(); });
  client_->Start([this, self](pb::StreamFrame& f) { FromClient(f); },
                 [this, self](const std::string&) {
                   // roam run is gone (killed, or done after the exit frame):
                   // closing the link kills the process if it still runs.
                   if (!exit_seen_) spdlog::info("{}: roam run went away; ending the process", record_->gpid);
                   link_->Close("roam run went away", false);
                   End();
                 });
}

void RemoteRun::FromClient(pb::StreamFrame& f) {
  switch (f.kind_case()) {
    case pb::StreamFrame::kStdinData:
    case pb::StreamFrame::kStdinEof:
    case pb::StreamFrame::kSignal:
    case pb::StreamFrame::kWinsize: {
      pb::LinkFrame out;
      *out.mutable_stream() = std::move(f);
      link_->Send(out);
      break;
    }
    default:
      break;
  }
}

void RemoteRun::FromLink(pb::LinkFrame& f) {
  if (!f.has_stream()) return;
  pb::StreamFrame& s = *f.mutable_stream();
  switch (s.kind_case()) {
    case pb::StreamFrame::kStats:
      record_->stats = s.stats();
      return;
    case pb::StreamFrame::kExit:
      exit_seen_ = true;
      client_->Send(s);
      client_->Close("exit sent");
      link_->Close("done", false);
      return;
    case pb::StreamFrame::kStdoutData:
    case pb::StreamFrame::kStderrData:
    case pb::StreamFrame::kStdinAck:
    case pb::StreamFrame::kError:
      client_->Send(s);
      if (client_->queued_bytes() > kClientHighWater) link_->Pause();
      return;
    default:
      return;
  }
}

void RemoteRun::Signal(int signo) {
  pb::LinkFrame f;
  f.mutable_stream()->mutable_signal()->set_signo(signo);
  link_->Send(f);
}

void RemoteRun::NodeLost(const std::string& why) {
  if (exit_seen_ || ended_) return;
  spdlog::warn("{}: {}", record_->gpid, why);
  pb::StreamFrame f;
  f.set_error("node " + record_->where + " running " + record_->gpid + " is lost: " + why);
  client_->Send(f);
  client_->Close("node lost");
  link_->Close("node lost", false);
  End();
}

void RemoteRun::End() {
  if (ended_) return;
  ended_ = true;
  if (auto f = std::move(on_end_)) f();
}

}  // namespace roam
