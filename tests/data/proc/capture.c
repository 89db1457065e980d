// Builds one of each kernel object roam's /proc parsers read, then copies the
// kernel's text for them into OUTDIR. Linux only; run as an ordinary user.
//   cc -O0 -o capture capture.c -lrt && ./capture OUTDIR
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <grp.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char* outdir;

static void copy(const char* src, const char* name) {
  char dst[4096];
  snprintf(dst, sizeof dst, "%s/%s", outdir, name);
  FILE* in = fopen(src, "r");
  FILE* out = fopen(dst, "w");
  if (!in || !out) { perror(src); exit(1); }
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, n, out);
  fclose(in);
  fclose(out);
}

static void copy_fdinfo(int fd, const char* name) {
  char src[64];
  snprintf(src, sizeof src, "/proc/self/fdinfo/%d", fd);
  copy(src, name);
}


// In a new PID namespace, with distinct real/effective/saved ids,
// supplementary groups, no_new_privs and two seccomp filters, writes the
// status text of its own process to NAME.
static void on_hup(int sig) { (void)sig; }

static void capture_confined_status(const char* name) {
  char dst[4096];
  snprintf(dst, sizeof dst, "%s/%s", outdir, name);
  pid_t outer = fork();
  if (outer == 0) {
    if (unshare(CLONE_NEWPID) != 0) { perror("unshare"); _exit(1); }
    pid_t inner = fork();
    if (inner == 0) {
      FILE* out = fopen(dst, "w");
      gid_t groups[] = {10, 20, 1000};
      signal(SIGPIPE, SIG_IGN);
      signal(SIGHUP, on_hup);
      if (!out || setgroups(3, groups) || setresgid(1000, 1001, 1002) || setresuid(1000, 1001, 1002)) {
        perror("drop ids");
        _exit(1);
      }
      umask(027);
      prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
      struct sock_filter allow[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
      struct sock_fprog prog = {.len = 1, .filter = allow};
      prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
      prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
      FILE* in = fopen("/proc/self/status", "r");
      char buf[65536];
      size_t n;
      while (in && (n = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, n, out);
      fclose(out);
      _exit(0);
    }
    waitpid(inner, NULL, 0);
    _exit(0);
  }
  waitpid(outer, NULL, 0);
}

int main(int argc, char** argv) {
  if (argc != 2) { fprintf(stderr, "usage: capture OUTDIR\n"); return 2; }
  outdir = argv[1];

  // eventfd with a counter, nonblocking so flags show O_NONBLOCK.
  int efd = eventfd(5, EFD_NONBLOCK | EFD_CLOEXEC);
  eventfd_write(efd, 37);

  // timerfd armed 100 s out, repeating every 2.5 s, absolute-time flag off.
  int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  struct itimerspec its = {.it_interval = {2, 500000000}, .it_value = {100, 0}};
  timerfd_settime(tfd, 0, &its, NULL);
  // A second one on CLOCK_REALTIME with TFD_TIMER_ABSTIME, already expired
  // several times so ticks > 0.
  int tfd2 = timerfd_create(CLOCK_REALTIME, 0);
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  struct itimerspec its2 = {.it_interval = {0, 10000000}, .it_value = now};
  timerfd_settime(tfd2, TFD_TIMER_ABSTIME, &its2, NULL);
  usleep(55000);

  // signalfd for SIGUSR1 | SIGUSR2 | SIGRTMIN+1.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGUSR1);
  sigaddset(&mask, SIGUSR2);
  sigaddset(&mask, SIGRTMIN + 1);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC);

  // epoll watching the eventfd and the timerfd.
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u64 = 0x1122334455667788ULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev);
  struct epoll_event ev2 = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.fd = tfd};
  epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev2);

  // inotify with two watches.
  int in = inotify_init1(IN_NONBLOCK);
  inotify_add_watch(in, "/tmp", IN_CREATE | IN_DELETE);
  inotify_add_watch(in, "/etc", IN_MODIFY | IN_ATTRIB | IN_ONLYDIR);
  // A second inotify with 11 watches, to show the watch descriptor's base.
  char tree[] = "/tmp/roam-inotify-XXXXXX";
  mkdtemp(tree);
  int in_many = inotify_init1(0);
  for (int i = 0; i < 11; i++) {
    char dir[128];
    snprintf(dir, sizeof dir, "%s/d%d", tree, i);
    mkdir(dir, 0700);
    inotify_add_watch(in_many, dir, IN_ALL_EVENTS);
  }

  // POSIX timers of the three notify kinds.
  timer_t t1, t2, t3;
  struct sigevent se = {0};
  se.sigev_notify = SIGEV_SIGNAL;
  se.sigev_signo = SIGRTMIN;
  se.sigev_value.sival_ptr = (void*)0x7f00deadbeefULL;
  timer_create(CLOCK_MONOTONIC, &se, &t1);
  memset(&se, 0, sizeof se);
  se.sigev_notify = SIGEV_THREAD_ID;
  se.sigev_signo = SIGUSR1;
  se.sigev_value.sival_int = 42;
  se._sigev_un._tid = (pid_t)syscall(SYS_gettid);
  timer_create(CLOCK_REALTIME, &se, &t2);
  memset(&se, 0, sizeof se);
  se.sigev_notify = SIGEV_NONE;
  timer_create(CLOCK_PROCESS_CPUTIME_ID, &se, &t3);

  // Mappings: heap, a deleted file, shared anonymous, grows-down, PROT_NONE.
  char* heap = malloc(300000);
  memset(heap, 1, 300000);
  char* small = malloc(64);
  small[0] = 1;
  char path[4096];
  snprintf(path, sizeof path, "%s/roam capture deleted.bin", "/tmp");
  int dfd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  ftruncate(dfd, 3 * 4096);
  char* del = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, dfd, 4096 * 0);
  del[0] = 1;
  unlink(path);
  close(dfd);
  char* shanon = mmap(NULL, 8 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  memset(shanon, 2, 2 * 4096);
  char* gd = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN, -1, 0);
  gd[4 * 4096 - 1] = 3;
  char* none = mmap(NULL, 16 * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  (void)none;

  // A child, so task/TID/children is not empty.
  pid_t child = fork();
  if (child == 0) { pause(); _exit(0); }
  pid_t child2 = fork();
  if (child2 == 0) { pause(); _exit(0); }
  usleep(20000);

  copy_fdinfo(efd, "fdinfo_eventfd.txt");
  copy_fdinfo(tfd, "fdinfo_timerfd.txt");
  copy_fdinfo(tfd2, "fdinfo_timerfd_abstime.txt");
  copy_fdinfo(sfd, "fdinfo_signalfd.txt");
  copy_fdinfo(ep, "fdinfo_epoll.txt");
  copy_fdinfo(in, "fdinfo_inotify.txt");
  copy_fdinfo(0, "fdinfo_stdin.txt");
  copy_fdinfo(in_many, "fdinfo_inotify_many.txt");
  int ptm = posix_openpt(O_RDWR | O_NOCTTY);
  if (ptm >= 0) copy_fdinfo(ptm, "fdinfo_ptmx.txt");
  // pidfds: of a running child (PIDFD_NONBLOCK), and of one reaped.
  int live = (int)syscall(SYS_pidfd_open, child, O_NONBLOCK);
  if (live >= 0) copy_fdinfo(live, "fdinfo_pidfd.txt");
  pid_t gone = fork();
  if (gone == 0) _exit(0);
  int dead = (int)syscall(SYS_pidfd_open, gone, 0);
  waitpid(gone, NULL, 0);
  if (dead >= 0) copy_fdinfo(dead, "fdinfo_pidfd_reaped.txt");
  // A zombie's status: a child that exited, before it is reaped.
  pid_t z = fork();
  if (z == 0) _exit(3);
  siginfo_t zi;
  waitid(P_PID, z, &zi, WEXITED | WNOWAIT);
  char zpath[64];
  snprintf(zpath, sizeof zpath, "/proc/%d/status", z);
  copy(zpath, "status_zombie.txt");
  waitpid(z, NULL, 0);
  copy("/proc/self/timers", "timers.txt");
  copy("/proc/self/maps", "maps.txt");
  copy("/proc/self/smaps", "smaps.txt");
  copy("/proc/self/status", "status.txt");
  copy("/proc/self/stat", "stat.txt");
  char src[128];
  snprintf(src, sizeof src, "/proc/self/task/%d/children", getpid());
  copy(src, "children.txt");
  capture_confined_status("status_confined.txt");
  // A command name holding a backslash, a newline, a space and parentheses.
  pid_t odd = fork();
  if (odd == 0) {
    prctl(PR_SET_NAME, "a\\b\nc d)(", 0, 0, 0);
    copy("/proc/self/status", "status_oddname.txt");
    copy("/proc/self/stat", "stat_oddname.txt");
    _exit(0);
  }
  waitpid(odd, NULL, 0);
  printf("pid %d children %d %d\n", getpid(), child, child2);
  kill(child, SIGKILL);
  kill(child2, SIGKILL);
  waitpid(child, NULL, 0);
  waitpid(child2, NULL, 0);
  return 0;
}
