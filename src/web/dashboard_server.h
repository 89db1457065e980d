// DashboardServer: the HTTP side of a roamd (docs/DASHBOARD.md): the page,
// its JSON API and /metrics, behind the cluster's token.
//
// It owns no cluster state. Everything it shows or does goes through
// roamd's own control socket, as `roam` would (as root), so roamd's event
// loop stays the one owner of its state and a slow or stuck HTTP client
// never delays membership or a move. It runs on threads of its own: the
// HTTP server's (a pool of 4), and a sampler that asks roamd for its nodes
// once a second (the history ring) and, while someone watches, for the
// processes of every node (the state the events stream carries).
#pragma once

#include <memory>
#include <string>

#include "common/status.h"

namespace roam {

class DashboardServer {
 public:
  struct Options {
    std::string listen;          // "ADDR:PORT"
    std::string token;           // web/dashboard_token.h
    std::string control_socket;  // roamd's
  };
  // Binds `listen` and starts serving; an address that cannot be bound is
  // an error (one line).
  static Result<std::unique_ptr<DashboardServer>> Start(const Options& o);
  ~DashboardServer();  // stops serving and joins its threads

  DashboardServer(const DashboardServer&) = delete;
  DashboardServer& operator=(const DashboardServer&) = delete;

  struct Impl;

 private:
  explicit DashboardServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace roam
