#include "web/dashboard_server.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <set>
#include <thread>

#include <sys/socket.h>

#include "cli/control_client.h"
#include "cli/process_commands.h"
#include "common/unique_fd.h"
#include "node/roamd_config.h"
#include "web/assets.h"
#include "web/dashboard_token.h"
#include "web/metrics_text.h"
#include "web/state_json.h"
#include "wire/frame.h"
#include "wire/reply.h"

namespace roam {

using json = nlohmann::ordered_json;

namespace {

constexpr int kQuickCallMs = 5000;           // nodes, ps, progress
constexpr int kMoveCallMs = 15 * 60 * 1000;  // a move of a large process
constexpr int64_t kSampleMs = 1000;
constexpr int64_t kWatchedForMs = 5000;  // a viewer asked this lately: keep the state fresh
constexpr size_t kHistorySamples = 3600;  // an hour, one a second

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void SendJson(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_header("Cache-Control", "no-store");
  res.set_content(body.dump(), "application/json");
}

void SendError(httplib::Response& res, int status, const std::string& line) {
  SendJson(res, status, json{{"error", line}});
}

// The HTTP status for a failed control call, by its code.
int HttpStatusOf(const Status& st) {
  switch (st.code()) {
    case StatusCode::kNotFound: return 404;
    case StatusCode::kInvalid: return 400;
    case StatusCode::kPermission: return 403;
    case StatusCode::kRefused:
    case StatusCode::kBusy:
    case StatusCode::kNoRoom:
    case StatusCode::kCantMove:
    case StatusCode::kMismatch: return 409;
    case StatusCode::kUnavailable: return 503;
    default: return 500;
  }
}

// The value of cookie `name` in a Cookie header, or "".
std::string CookieValue(const std::string& header, const std::string& name) {
  size_t pos = 0;
  while (pos < header.size()) {
    size_t end = header.find(';', pos);
    if (end == std::string::npos) end = header.size();
    std::string part = header.substr(pos, end - pos);
    size_t start = part.find_first_not_of(' ');
    if (start != std::string::npos) part = part.substr(start);
    if (part.rfind(name + "=", 0) == 0) return part.substr(name.size() + 1);
    pos = end + 1;
  }
  return "";
}

}  // namespace

struct DashboardServer::Impl {
  Options opt;
  httplib::Server http;
  std::thread http_thread, sampler;
  HistoryRing history{kHistorySamples};

  std::mutex mu;
  std::condition_variable changed;
  bool stopping = false;
  uint64_t generation = 0;     // of `state`
  std::string state;           // the last /api/state body, "" before the first
  int64_t watched_until = 0;   // steady ms
  std::set<int> calls;         // control connections in use

  // The token a request carries (header, query or cookie), and whether it
  // came in the query (then the page gets the cookie).
  bool Authorized(const httplib::Request& req, bool* from_query) const {
    *from_query = false;
    std::string auth = req.get_header_value("Authorization");
    if (auth.rfind("Bearer ", 0) == 0 && TokenMatches(auth.substr(7), opt.token)) return true;
    if (req.has_param("token") && TokenMatches(req.get_param_value("token"), opt.token)) {
      *from_query = true;
      return true;
    }
    return TokenMatches(CookieValue(req.get_header_value("Cookie"), "roam_token"), opt.token);
  }

  // One request to roamd, as CallRoamd does, but cut short when the server
  // stops (a move may take minutes; roamd's loop may have stopped first).
  Result<pb::ControlReply> Call(const pb::ControlRequest& r, int timeout_ms = kQuickCallMs) {
    Result<int> connected = ConnectRoamd(opt.control_socket);
    if (!connected.ok()) return connected.status();
    UniqueFd fd(*connected);
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    {
      std::lock_guard<std::mutex> lock(mu);
      if (stopping) return Status::Error(StatusCode::kUnavailable, "roamd is stopping");
      calls.insert(fd.get());
    }
    pb::ControlReply reply;
    Status st = WriteFrame(fd.get(), r);
    if (st.ok()) st = ReadFrame(fd.get(), &reply);
    {
      std::lock_guard<std::mutex> lock(mu);
      calls.erase(fd.get());
    }
    if (!st.ok()) return Status::Error(StatusCode::kUnavailable, "roamd did not answer: " + st.message());
    if (Status rs = ReplyStatus(reply); !rs.ok()) return rs;
    return reply;
  }

  Result<std::string> FreshState() {
    pb::ControlRequest nodes_req, ps_req;
    nodes_req.mutable_nodes();
    ps_req.mutable_ps()->set_all(true);
    Result<pb::ControlReply> nodes = Call(nodes_req);
    if (!nodes.ok()) return nodes.status();
    Result<pb::ControlReply> ps = Call(ps_req);
    if (!ps.ok()) return ps.status();
    return StateJson(nodes->nodes(), ps->ps(), NowMs()).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }

  void Watched() {
    std::lock_guard<std::mutex> lock(mu);
    watched_until = SteadyMs() + kWatchedForMs;
  }

  // Once a second: the nodes into the history; the whole state while
  // someone watches.
  void Sample() {
    int64_t next = SteadyMs();
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu);
        changed.wait_for(lock, std::chrono::milliseconds(std::max<int64_t>(0, next - SteadyMs())),
                         [&] { return stopping; });
        if (stopping) return;
      }
      next += kSampleMs;
      if (next < SteadyMs()) next = SteadyMs() + kSampleMs;  // fell behind: no burst
      pb::ControlRequest req;
      req.mutable_nodes();
      Result<pb::ControlReply> nodes = Call(req);
      if (!nodes.ok()) continue;
      history.Add(nodes->nodes(), NowMs());
      bool watched;
      {
        std::lock_guard<std::mutex> lock(mu);
        watched = SteadyMs() < watched_until;
      }
      if (!watched) continue;
      pb::ControlRequest ps_req;
      ps_req.mutable_ps()->set_all(true);
      Result<pb::ControlReply> ps = Call(ps_req);
      if (!ps.ok()) continue;
      std::string body =
          StateJson(nodes->nodes(), ps->ps(), NowMs()).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      std::lock_guard<std::mutex> lock(mu);
      state = std::move(body);
      ++generation;
      changed.notify_all();
    }
  }

  void Routes();
};

void DashboardServer::Impl::Routes() {
  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    bool from_query = false;
    if (!Authorized(req, &from_query)) {
      res.status = 401;
      res.set_header("WWW-Authenticate", "Bearer");
      res.set_content("roam: this request carries no valid token (roam web prints the address with it)\n",
                      "text/plain; charset=utf-8");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (from_query) {
      res.set_header("Set-Cookie", "roam_token=" + opt.token + "; Path=/; HttpOnly; SameSite=Strict");
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });

  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    pb::ControlRequest req;
    req.mutable_nodes();
    Result<pb::ControlReply> r = Call(req);
    if (!r.ok()) return SendError(res, 503, r.status().message());
    res.set_content(RenderMetrics(r->nodes()), "text/plain; version=0.0.4; charset=utf-8");
  });

  http.Get("/api/state", [this](const httplib::Request&, httplib::Response& res) {
    Watched();
    Result<std::string> s = FreshState();
    if (!s.ok()) return SendError(res, 503, s.status().message());
    res.set_header("Cache-Control", "no-store");
    res.set_content(*s, "application/json");
  });

  http.Get("/api/history", [this](const httplib::Request&, httplib::Response& res) {
    SendJson(res, 200, history.ToJson(kSampleMs));
  });

  http.Get("/api/events", [this](const httplib::Request&, httplib::Response& res) {
    Watched();
    res.set_header("Cache-Control", "no-store");
    auto sent = std::make_shared<uint64_t>(0);
    res.set_chunked_content_provider("text/event-stream", [this, sent](size_t, httplib::DataSink& sink) {
      std::string body;
      {
        std::unique_lock<std::mutex> lock(mu);
        watched_until = SteadyMs() + kWatchedForMs;
        changed.wait_for(lock, std::chrono::milliseconds(2 * kSampleMs),
                         [&] { return stopping || generation != *sent; });
        if (stopping) return false;
        if (generation != *sent) {
          *sent = generation;
          body = "event: state\ndata: " + state + "\n\n";
        }
      }
      // Nothing new: a comment keeps the connection and shows a gone client.
      if (body.empty()) body = ": waiting for roamd\n\n";
      return sink.write(body.data(), body.size());
    });
  });

  http.Get("/api/progress", [this](const httplib::Request& req, httplib::Response& res) {
    if (!req.has_param("gpid")) return SendError(res, 400, "which process? (?gpid=NODE:PID)");
    pb::ControlRequest r;
    r.mutable_move_progress()->set_gpid(req.get_param_value("gpid"));
    Result<pb::ControlReply> reply = Call(r);
    if (!reply.ok()) return SendJson(res, 200, ProgressJson(nullptr));  // none under way
    SendJson(res, 200, ProgressJson(reply->has_move_progress() ? &reply->move_progress() : nullptr));
  });

  http.Post("/api/migrate", [this](const httplib::Request& req, httplib::Response& res) {
    json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    if (!body.is_object() || !body.contains("gpid") || !body["gpid"].is_string() || !body.contains("to") ||
        !body["to"].is_string()) {
      return SendError(res, 400, "expected {\"gpid\": \"NODE:PID\", \"to\": \"NODE|home|best\"}");
    }
    pb::ControlRequest r;
    r.mutable_migrate()->set_gpid(body["gpid"].get<std::string>());
    r.mutable_migrate()->set_to(body["to"].get<std::string>());
    spdlog::info("dashboard: move {} -> {} asked from {}", r.migrate().gpid(), r.migrate().to(), req.remote_addr);
    Result<pb::ControlReply> reply = Call(r, kMoveCallMs);
    if (!reply.ok()) return SendError(res, HttpStatusOf(reply.status()), reply.status().message());
    // The figures as `roam migrate --json` prints them.
    nlohmann::json done{{"ok", true}, {"figures", MigrationJson(reply->migration())}};
    res.set_header("Cache-Control", "no-store");
    res.set_content(done.dump(), "application/json");
  });

  // The page: anything else that is one of its files.
  http.Get(".*", [](const httplib::Request& req, httplib::Response& res) {
    const WebAsset* a = FindWebAsset(req.path);
    if (a == nullptr) {
      res.status = 404;
      res.set_content("roam: no such page: " + req.path + "\n", "text/plain; charset=utf-8");
      return;
    }
    res.set_header("Cache-Control", a->path == "/index.html" ? "no-cache" : "max-age=86400");
    res.set_content(std::string(a->body), std::string(a->content_type));
  });
}

DashboardServer::DashboardServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<DashboardServer>> DashboardServer::Start(const Options& o) {
  std::string host;
  uint16_t port = 0;
  if (!SplitHostPort(o.listen, &host, &port)) {
    return Status::Error(StatusCode::kInvalid, "dashboard: expected ADDR:PORT, not '" + o.listen + "'");
  }
  auto impl = std::make_unique<Impl>();
  impl->opt = o;
  impl->http.new_task_queue = [] { return new httplib::ThreadPool(4); };
  impl->http.set_keep_alive_timeout(30);
  impl->Routes();
  if (!impl->http.bind_to_port(host, port)) {
    return Status::Errno("dashboard: cannot listen on " + o.listen);
  }
  Impl* p = impl.get();
  p->http_thread = std::thread([p] { p->http.listen_after_bind(); });
  p->sampler = std::thread([p] { p->Sample(); });
  spdlog::info("dashboard on http://{}/ (roam web prints it with its token)", o.listen);
  return std::unique_ptr<DashboardServer>(new DashboardServer(std::move(impl)));
}

DashboardServer::~DashboardServer() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
    impl_->changed.notify_all();
    for (int fd : impl_->calls) ::shutdown(fd, SHUT_RDWR);
  }
  impl_->http.stop();
  if (impl_->http_thread.joinable()) impl_->http_thread.join();
  if (impl_->sampler.joinable()) impl_->sampler.join();
}

}  // namespace roam
