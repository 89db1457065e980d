// roamd: the per-node daemon. Configuration comes from a file (see
// etc/roamd.conf.example; default search in DefaultConfigPath()) with
// command-line flags on top.
#include <fcntl.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <malloc.h>

#include <CLI/CLI.hpp>

#include "web/dashboard_server.h"
#include "web/dashboard_token.h"
#include <cstdio>

#include "common/file_util.h"
#include "node/roamd.h"

namespace {

// Forks; the parent exits 0 once the child has started (or 1 if it failed).
// The child detaches from the terminal. Returns the pipe end the child
// writes its verdict to.
int Daemonize() {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return -1;
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid > 0) {
    close(p[1]);
    char verdict = 1;
    ssize_t n = read(p[0], &verdict, 1);
    _exit(n == 1 && verdict == 0 ? 0 : 1);
  }
  close(p[0]);
  setsid();
  int null = open("/dev/null", O_RDWR);
  if (null >= 0) {
    dup2(null, 0);
    close(null);
  }
  return p[1];
}

void Report(int fd, char verdict) {
  if (fd < 0) return;
  (void)!write(fd, &verdict, 1);
  close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  // Stream relaying allocates ~64 KiB buffers per frame: keep freed memory
  // in the heap, since fresh pages cost a fault each (15 us on our VMs).
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 128 << 20);
  CLI::App app{"roamd: the roam node daemon"};
  app.set_version_flag("--version", "roamd " ROAM_VERSION);
  std::string config_path = roam::DefaultConfigPath();
  std::string name, cluster, key_file, bind, multicast, control, log_file, peers;
  uint16_t port = 0;
  bool insecure = false, daemon = false;
  app.add_option("-c,--config", config_path, "configuration file");
  app.add_option("--name", name, "node name (default: host name)");
  app.add_option("--cluster", cluster, "cluster name");
  app.add_option("--key", key_file, "cluster key file");
  app.add_option("--bind", bind, "IPv4 address of the gossip socket");
  app.add_option("--port", port, "gossip UDP port");
  app.add_option("--multicast", multicast, "discovery group ip:port, or off");
  app.add_option("--peers", peers, "static peers, comma-separated ip:port");
  app.add_option("--control", control, "control socket path");
  app.add_option("--log", log_file, "log file (default: stderr, or /run/roam/roamd.log with --daemon)");
  app.add_flag("--insecure", insecure, "no cluster key (loopback addresses only)");
  app.add_flag("--daemon", daemon, "detach and run in the background");
  CLI11_PARSE(app, argc, argv);

  roam::RoamdConfig cfg;
  if (!config_path.empty()) {
    roam::Result<std::string> text = roam::ReadFile(config_path);
    if (!text.ok()) {
      fprintf(stderr, "roamd: %s\n", text.status().message().c_str());
      return 1;
    }
    if (roam::Status st = roam::ParseRoamdConfig(*text, &cfg); !st.ok()) {
      fprintf(stderr, "roamd: %s: %s\n", config_path.c_str(), st.message().c_str());
      return 1;
    }
  }
  // Flags override the file; they go through the same parser and checks.
  std::string overrides;
  auto add = [&](const char* key, const std::string& v) {
    if (!v.empty()) overrides += std::string(key) + " = " + v + "\n";
  };
  add("name", name);
  add("cluster", cluster);
  add("key_file", key_file);
  add("bind", bind);
  add("port", port ? std::to_string(port) : "");
  add("multicast", multicast);
  add("peers", peers);
  add("control_socket", control);
  add("log_file", log_file);
  if (insecure) add("insecure", "true");
  if (roam::Status st = roam::ParseRoamdConfig(overrides, &cfg); !st.ok()) {
    fprintf(stderr, "roamd: command line: %s\n", st.message().c_str());
    return 1;
  }
  if (daemon && cfg.log_file.empty()) cfg.log_file = "/run/roam/roamd.log";

  int verdict_fd = daemon ? Daemonize() : -1;
  if (!cfg.log_file.empty()) {
    try {
      spdlog::set_default_logger(spdlog::basic_logger_mt("roamd", cfg.log_file));
      spdlog::flush_on(spdlog::level::info);
    } catch (const spdlog::spdlog_ex& e) {
      fprintf(stderr, "roamd: log file %s: %s\n", cfg.log_file.c_str(), e.what());
      Report(verdict_fd, 1);
      return 1;
    }
  }
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %L %v");

  roam::Roamd roamd(cfg);
  if (roam::Status st = roamd.Init(); !st.ok()) {
    fprintf(stderr, "roamd: %s\n", st.message().c_str());
    spdlog::error("{}", st.message());
    Report(verdict_fd, 1);
    return 1;
  }
  // The dashboard (docs/DASHBOARD.md): its own threads, talking to this
  // roamd through the control socket only.
  std::unique_ptr<roam::DashboardServer> dashboard;
  if (!cfg.http.empty()) {
    const std::string token = roam::DashboardToken(roamd.key(), cfg.cluster);
    roam::Result<std::unique_ptr<roam::DashboardServer>> d =
        roam::DashboardServer::Start({cfg.http, token, cfg.control_socket});
    if (!d.ok()) {
      fprintf(stderr, "roamd: %s\n", d.status().message().c_str());
      if (!cfg.log_file.empty()) spdlog::error("{}", d.status().message());
      Report(verdict_fd, 1);
      return 1;
    }
    dashboard = std::move(*d);
    roamd.set_dashboard_url(roam::DashboardUrl(cfg.http, cfg.bind) + "?token=" + token);
  }
  Report(verdict_fd, 0);
  if (daemon) {
    int null = open("/dev/null", O_RDWR);
    dup2(null, 1);
    dup2(null, 2);
    close(null);
  }
  roamd.Run();
  dashboard.reset();
  return 0;
}
