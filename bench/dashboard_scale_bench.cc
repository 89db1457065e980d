// dashboard_scale_bench: the dashboard's own cost at a scale no test
// cluster reaches here. Runs the real DashboardServer (src/web) against a
// stand-in roamd: a control socket that answers `nodes` with N nodes and
// `ps --all` with M processes (their load and CPU changing every answer),
// so that the server's work per second is what it would be on a cluster
// of N nodes. A browser (bench/dashboard_bench.sh) watches the page.
//
// Prints, after the given seconds: the CPU the server's threads used
// (process CPU minus the stand-in's thread), as a share of one core, and
// the requests the stand-in answered.
//
// usage: dashboard_scale_bench LISTEN SOCKET NODES PROCS SECONDS TOKEN
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <thread>

#include "control.pb.h"
#include "web/dashboard_server.h"
#include "wire/frame.h"

namespace {

double ThreadCpu() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

double ProcessCpu() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
}

double Now() {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

roam::pb::NodesReply Nodes(int n, uint64_t tick) {
  roam::pb::NodesReply r;
  r.set_self("n1");
  r.set_cluster("sim");
  for (int i = 1; i <= n; ++i) {
    roam::pb::NodeView* v = r.add_nodes();
    v->set_name("n" + std::to_string(i));
    v->set_address("10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1) + ":7946");
    v->set_state(i % 37 == 0 ? roam::pb::DEAD : roam::pb::ALIVE);
    v->set_is_self(i == 1);
    roam::pb::LoadVector* l = v->mutable_load();
    l->set_cpus(8);
    l->set_cpu_share(8);
    l->set_speed(1000);
    l->set_load(4 + 3 * std::sin(0.1 * tick + i));
    l->set_cpu_util(0.5 + 0.4 * std::sin(0.07 * tick + i));
    l->set_mem_total(32ull << 30);
    l->set_mem_free((16ull << 30) + (tick * 7919 + i * 104729) % (8ull << 30));
    l->set_home_procs(10);
    l->set_guest_procs(10);
    l->set_accepts_guests(i % 23 != 0);
    l->set_age_ms(300);
  }
  return r;
}

roam::pb::PsReply Procs(int nodes, int m, uint64_t tick) {
  roam::pb::PsReply r;
  for (int i = 0; i < m; ++i) {
    roam::pb::ProcessView* p = r.add_processes();
    const int home = i % nodes + 1;
    p->set_gpid("n" + std::to_string(home) + ":" + std::to_string(1000 + i));
    p->set_user("user" + std::to_string(i % 20));
    p->set_uid(1000 + i % 20);
    p->set_home("n" + std::to_string(home));
    p->set_where("n" + std::to_string((i * 7 + tick / 30) % nodes + 1));
    p->set_state("running");
    p->set_nmig(static_cast<uint32_t>(i % 5));
    p->set_cantmove(i % 50 == 0 ? "threads" : "");
    p->set_cpu_percent(std::fmod(i * 13.0 + tick, 100.0));
    p->set_rss_bytes((uint64_t(i) % 64 + 1) << 20);
    p->set_time_seconds(tick + i % 600);
    p->set_command("python3 sim.py --seed " + std::to_string(i));
    p->set_pid(static_cast<uint32_t>(1000 + i));
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: dashboard_scale_bench LISTEN SOCKET NODES PROCS SECONDS TOKEN\n");
    return 2;
  }
  const std::string listen = argv[1], path = argv[2], token = argv[6];
  const int nodes = atoi(argv[3]), procs = atoi(argv[4]);
  const double seconds = atof(argv[5]);

  unlink(path.c_str());
  int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  if (bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(lfd, 64) != 0) {
    perror("control socket");
    return 1;
  }
  std::atomic<double> standin_cpu{0};
  std::atomic<uint64_t> answered{0};
  std::thread standin([&] {
    uint64_t tick = 0;
    for (;;) {
      int c = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) break;
      roam::pb::ControlRequest req;
      if (roam::ReadFrame(c, &req).ok()) {
        roam::pb::ControlReply reply;
        ++tick;
        if (req.has_nodes()) {
          *reply.mutable_nodes() = Nodes(nodes, tick / 2);
        } else if (req.has_ps()) {
          *reply.mutable_ps() = Procs(nodes, procs, tick / 2);
        } else {
          reply.set_error("the stand-in answers nodes and ps only");
        }
        (void)roam::WriteFrame(c, reply);
        ++answered;
      }
      close(c);
      standin_cpu = ThreadCpu();
    }
  });

  roam::Result<std::unique_ptr<roam::DashboardServer>> server = roam::DashboardServer::Start({listen, token, path});
  if (!server.ok()) {
    fprintf(stderr, "dashboard_scale_bench: %s\n", server.status().message().c_str());
    return 1;
  }
  printf("ready http://%s/?token=%s\n", listen.c_str(), token.c_str());
  fflush(stdout);
  // Warm-up: the first seconds (the browser loading the page) are not counted.
  usleep(static_cast<useconds_t>(5e6));
  const double cpu0 = ProcessCpu(), standin0 = standin_cpu, t0 = Now();
  const uint64_t answered0 = answered;
  usleep(static_cast<useconds_t>(seconds * 1e6));
  const double wall = Now() - t0;
  const double server_cpu = (ProcessCpu() - cpu0) - (standin_cpu - standin0);
  printf("RESULT dashboard_scale nodes=%d procs=%d seconds=%.1f server_cpu_s=%.3f server_core_share=%.4f standin_cpu_s=%.3f "
         "requests=%llu\n",
         nodes, procs, wall, server_cpu, server_cpu / wall, double(standin_cpu - standin0),
         static_cast<unsigned long long>(answered - answered0));
  fflush(stdout);
  server->reset();
  shutdown(lfd, SHUT_RDWR);
  close(lfd);
  standin.join();
  unlink(path.c_str());
  return 0;
}
