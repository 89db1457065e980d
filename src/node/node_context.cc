#include "node/node_context.h"

namespace roam {

int64_t NodeContext::Now() {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  static const int64_t offset =
      duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count() -
      duration_cast<milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
  return duration_cast<milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count() + offset;
}

std::string NodeContext::AddressOf(const std::string& node) const {
  auto it = swim->members().find(node);
  return it == swim->members().end() ? "" : it->second.address;
}

void NodeContext::AskNode(const std::string& node, pb::LinkRequest req, std::function<void(Result<pb::LinkReply>)> done,
                          std::chrono::seconds timeout) {
  struct Ask {
    explicit Ask(asio::io_context& io) : timer(io) {}
    asio::steady_timer timer;
    std::function<void(Result<pb::LinkReply>)> done;
    std::shared_ptr<LinkSession> link;
    void Finish(Result<pb::LinkReply> r) {
      if (!done) return;
      auto d = std::move(done);
      done = nullptr;
      timer.cancel();
      if (link) {
        link->set_handlers(nullptr, nullptr);
        link->Close("done", false);
      }
      d(std::move(r));
    }
  };
  auto ask = std::make_shared<Ask>(io);
  ask->done = std::move(done);
  const std::string address = AddressOf(node);
  if (address.empty()) return ask->Finish(Status::Error(StatusCode::kNotFound, "no node named " + node));
  ask->timer.expires_after(timeout);
  ask->timer.async_wait([ask, node](asio::error_code ec) {
    if (!ec) ask->Finish(Status::Error(StatusCode::kUnavailable, node + " did not answer in time"));
  });
  links->Open(address, [ask, req = std::move(req)](Result<std::shared_ptr<LinkSession>> r, const std::string&) {
    if (!r.ok()) return ask->Finish(Status::Error(StatusCode::kUnavailable, r.status().message()));
    if (!ask->done) return (*r)->Close("late", false);
    ask->link = *r;
    ask->link->set_handlers(
        [ask](pb::LinkFrame& f) {
          if (f.has_reply()) return ask->Finish(f.reply());
          ask->Finish(Status::Error(StatusCode::kInvalid, "unexpected frame"));
        },
        [ask](const std::string& why) { ask->Finish(Status::Error(StatusCode::kUnavailable, why)); });
    pb::LinkFrame f;
    *f.mutable_request() = req;
    ask->link->Send(f);
  });
}

void SendReply(const std::shared_ptr<LinkSession>& link, pb::LinkReply reply) {
  pb::LinkFrame f;
  *f.mutable_reply() = std::move(reply);
  link->Send(f);
}

}  // namespace roam
