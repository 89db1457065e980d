// The /proc parsers of src/common/, against text captured from Linux 6.18
// by tests/data/proc/capture.c (see the README there), and against
// malformed text, which must give an error and never a crash.
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/timerfd.h>

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/file_util.h"
#include "common/proc_fdinfo.h"
#include "common/proc_maps.h"
#include "common/proc_stat.h"
#include "common/proc_status.h"
#include "common/proc_timers.h"

namespace roam {
namespace {

std::string Captured(const std::string& name) {
  Result<std::string> text = ReadFile(std::string(ROAM_TEST_DATA) + "/proc/" + name);
  EXPECT_TRUE(text.ok()) << text.status().message();
  return text.ok() ? *text : std::string();
}

// Message of a failed parse, or "" when it parsed.
template <typename T>
std::string ErrorOf(const Result<T>& r) {
  return r.ok() ? std::string() : r.status().message();
}

const VmaInfo* FindVma(const std::vector<VmaInfo>& vmas, uint64_t start) {
  for (const VmaInfo& v : vmas) {
    if (v.start == start) return &v;
  }
  return nullptr;
}

// ---- /proc/PID/stat and children ---------------------------------------------

TEST(ProcStatParse, ReadsEveryFieldOfACapturedLine) {
  Result<ProcStat> r = ParseProcStat(Captured("stat.txt"));
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_EQ(r->pid, 15535);
  EXPECT_EQ(r->comm, "capture");
  EXPECT_EQ(r->state, 'R');
  EXPECT_EQ(r->ppid, 15524);
  EXPECT_EQ(r->pgrp, 15524);
  EXPECT_EQ(r->session, 13622);
  EXPECT_EQ(r->tty_nr, 0);
  EXPECT_EQ(r->tpgid, -1);
  EXPECT_EQ(r->flags, 4194304u);
  EXPECT_EQ(r->cpu_ticks, 1u);
  EXPECT_EQ(r->num_threads, 1);
  EXPECT_EQ(r->start_code, 94152454639616u);
  EXPECT_EQ(r->end_code, 94152454643933u);
  EXPECT_EQ(r->start_stack, 140727024016000u);
  EXPECT_EQ(r->exit_signal, 17);
  EXPECT_EQ(r->start_data, 94152454655440u);
  EXPECT_EQ(r->end_data, 94152454656392u);
  EXPECT_EQ(r->start_brk, 94152995020800u);
  EXPECT_EQ(r->arg_start, 140727024024008u);
  EXPECT_EQ(r->arg_end, 140727024024022u);
  EXPECT_EQ(r->env_start, 140727024024022u);
  EXPECT_EQ(r->env_end, 140727024025582u);
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->field_count, 52);
}

TEST(ProcStatParse, CommandMayHoldNewlineBackslashAndParentheses) {
  Result<ProcStat> r = ParseProcStat(Captured("stat_oddname.txt"));
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_EQ(r->comm, "a\\b\nc d)(");
  EXPECT_EQ(r->state, 'R');
  EXPECT_EQ(r->ppid, 15535);
  EXPECT_EQ(r->field_count, 52);
}

TEST(ProcStatParse, ShortLineLeavesLaterFieldsZero) {
  Result<ProcStat> r = ParseProcStat("7 (x) S 1 7 7 34816 -1 64 0 0 0 0 3 4 0 0 20 0 2 0 99\n");
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_EQ(r->tty_nr, 34816);
  EXPECT_EQ(r->tpgid, -1);
  EXPECT_EQ(r->num_threads, 2);
  EXPECT_EQ(r->cpu_ticks, 7u);
  EXPECT_EQ(r->field_count, 22);
  EXPECT_EQ(r->start_code, 0u);
  EXPECT_EQ(r->exit_code, 0);
}

TEST(ProcStatParse, RejectsMalformedLines) {
  const std::string tail = " 1 2 3 4 5 6 7 8 9 10 11 12";  // fields 4-15
  for (const std::string& bad : {std::string(""), std::string("garbage"), std::string("1 (x) S 1 2"),
                                 "0 (x) S" + tail, "-1 (x) S" + tail, "x1 (x) S" + tail, "1 (x S" + tail,
                                 "1 (x) SS" + tail, std::string("1 (x) S 99999999999 2 3 4 5 6 7 8 9 10 11 12"),
                                 std::string("1 (x) S 1 2 3 4 5 flags 7 8 9 10 11 12"),
                                 std::string("1 (x) S 1 2 3 4 5 6 7 8 9 10 11 -12"), std::string("1 )x( S") + tail}) {
    EXPECT_FALSE(ParseProcStat(bad).ok()) << "accepted: " << bad;
    ProcStat ps;
    EXPECT_FALSE(ParseProcStat(bad, &ps)) << "accepted: " << bad;
  }
  std::string good = Captured("stat.txt");
  std::string bad_mm = good;
  bad_mm.replace(bad_mm.find("94152454639616"), 14, "0x1");
  EXPECT_NE(ErrorOf(ParseProcStat(bad_mm)).find("field 26"), std::string::npos) << ErrorOf(ParseProcStat(bad_mm));
}

TEST(ProcStatParse, ChildrenListGivesPidsInOrder) {
  Status error = Status::Error("not touched");
  EXPECT_EQ(ParseChildrenList(Captured("children.txt"), &error), (std::vector<int>{15536, 15537}));
  EXPECT_TRUE(error.ok()) << error.message();
  EXPECT_TRUE(ParseChildrenList("", &error).empty());
  EXPECT_TRUE(error.ok());
  EXPECT_EQ(ParseChildrenList("42\n"), std::vector<int>{42});
}

TEST(ProcStatParse, ChildrenListReportsAndSkipsWordsThatAreNotPids) {
  for (const char* bad : {"12 x 13 ", "12 0 13 ", "12 -3 13 ", "12 99999999999 13 ", "12 13,14 13"}) {
    Status error;
    std::vector<int> pids = ParseChildrenList(bad, &error);
    EXPECT_FALSE(error.ok()) << "accepted: " << bad;
    EXPECT_EQ(pids, (std::vector<int>{12, 13})) << bad;
  }
}

// ---- /proc/PID/maps and smaps -------------------------------------------------

TEST(ProcMapsParse, CapturedMapsGivesEveryKindOfArea) {
  Result<std::vector<VmaInfo>> r = ParseMaps(Captured("maps.txt"));
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  const std::vector<VmaInfo>& v = *r;
  ASSERT_EQ(v.size(), 28u);

  EXPECT_EQ(v[0].start, 0x55a1939cf000u);
  EXPECT_EQ(v[0].end, 0x55a1939d1000u);
  EXPECT_TRUE(v[0].read && !v[0].write && !v[0].exec && !v[0].shared);
  EXPECT_EQ(v[0].dev_major, 0xfeu);
  EXPECT_EQ(v[0].dev_minor, 0u);
  EXPECT_EQ(v[0].inode, 10969134u);
  EXPECT_EQ(v[0].path, "/tmp/proccap/capture");
  EXPECT_TRUE(v[0].vm_flags.empty());
  EXPECT_EQ(v[0].rss_kb, 0u);
  EXPECT_EQ(v[1].offset, 0x2000u);
  EXPECT_TRUE(v[1].exec);

  EXPECT_EQ(v[5].path, "[heap]");
  const VmaInfo* none = FindVma(v, 0x7f86110e5000);  // PROT_NONE
  ASSERT_NE(none, nullptr);
  EXPECT_TRUE(!none->read && !none->write && !none->exec && !none->shared);
  EXPECT_EQ(none->path, "");
  EXPECT_EQ(none->inode, 0u);

  const VmaInfo* zero = FindVma(v, 0x7f8611428000);  // shared anonymous
  ASSERT_NE(zero, nullptr);
  EXPECT_EQ(zero->path, "/dev/zero");
  EXPECT_TRUE(zero->deleted && zero->shared);
  EXPECT_EQ(zero->dev_minor, 1u);

  const VmaInfo* del = FindVma(v, 0x7f8611430000);  // unlinked file, spaces in its name
  ASSERT_NE(del, nullptr);
  EXPECT_EQ(del->path, "/tmp/roam capture deleted.bin");
  EXPECT_TRUE(del->deleted && del->shared && del->write);
  EXPECT_EQ(del->inode, 10952737u);

  EXPECT_EQ(v[18].path, "[vvar]");
  EXPECT_EQ(v[19].path, "[vvar_vclock]");
  EXPECT_EQ(v[20].path, "[vdso]");
  EXPECT_TRUE(v[20].exec);
  EXPECT_EQ(v[21].path, "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2");
  EXPECT_FALSE(v[21].deleted);
  EXPECT_EQ(v[26].path, "[stack]");
  EXPECT_EQ(v[27].path, "[vsyscall]");
  EXPECT_EQ(v[27].start, 0xffffffffff600000u);
  EXPECT_TRUE(v[27].exec && !v[27].read);
}

TEST(ProcMapsParse, SmapsAgreesWithMapsAndAddsFlagsAndSizes) {
  Result<std::vector<VmaInfo>> maps = ParseMaps(Captured("maps.txt"));
  Result<std::vector<VmaInfo>> smaps = ParseSmaps(Captured("smaps.txt"));
  ASSERT_TRUE(maps.ok() && smaps.ok()) << ErrorOf(maps) << ErrorOf(smaps);
  ASSERT_EQ(maps->size(), smaps->size());
  for (size_t i = 0; i < maps->size(); i++) {
    EXPECT_EQ((*maps)[i].start, (*smaps)[i].start);
    EXPECT_EQ((*maps)[i].end, (*smaps)[i].end);
    EXPECT_EQ((*maps)[i].path, (*smaps)[i].path);
    EXPECT_EQ((*maps)[i].deleted, (*smaps)[i].deleted);
    EXPECT_FALSE((*smaps)[i].vm_flags.empty()) << i;
  }
  const std::vector<VmaInfo>& v = *smaps;
  EXPECT_EQ(v[0].vm_flags, (std::vector<std::string>{"rd", "mr", "mw", "me"}));

  const VmaInfo* grows_down = FindVma(v, 0x7f86111f5000);  // MAP_GROWSDOWN
  ASSERT_NE(grows_down, nullptr);
  EXPECT_TRUE(grows_down->HasFlag("gd"));
  EXPECT_EQ(grows_down->path, "");
  EXPECT_TRUE(v[26].HasFlag("gd"));  // [stack]
  EXPECT_FALSE(v[5].HasFlag("gd"));  // [heap]
  EXPECT_EQ(v[5].anonymous_kb, 8u);

  const VmaInfo* none = FindVma(v, 0x7f86110e5000);
  ASSERT_NE(none, nullptr);
  EXPECT_FALSE(none->HasFlag("rd") || none->HasFlag("wr") || none->HasFlag("ex"));
  EXPECT_TRUE(none->HasFlag("nr"));
  EXPECT_EQ(none->rss_kb, 0u);

  const VmaInfo* zero = FindVma(v, 0x7f8611428000);
  ASSERT_NE(zero, nullptr);
  EXPECT_TRUE(zero->HasFlag("sh"));
  EXPECT_EQ(zero->rss_kb, 8u);
  EXPECT_EQ(zero->anonymous_kb, 0u);

  const VmaInfo* malloced = FindVma(v, 0x7f86111f9000);
  ASSERT_NE(malloced, nullptr);
  EXPECT_EQ(malloced->rss_kb, 304u);
  EXPECT_EQ(malloced->anonymous_kb, 304u);
  EXPECT_EQ(malloced->swap_kb, 0u);

  EXPECT_TRUE(v[18].HasFlag("pf") && v[18].HasFlag("io"));  // [vvar]
  EXPECT_EQ(v[27].vm_flags, std::vector<std::string>{"ex"});  // [vsyscall]
}

TEST(ProcMapsParse, SmapsReadsSwap) {
  Result<std::vector<VmaInfo>> r = ParseSmaps(
      "7f0000000000-7f0000010000 rw-p 00000000 00:00 0 \nRss:  4 kB\nSwap:                 60 kB\n"
      "THPeligible:    0\nProtectionKey:  0\nVmFlags: rd wr mr mw me ac ?? \n");
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].swap_kb, 60u);
  EXPECT_EQ((*r)[0].rss_kb, 4u);
  EXPECT_TRUE((*r)[0].HasFlag("??"));
}

TEST(ProcMapsParse, PathKeepsInnerSpacesAndOnlyATrailingDeleted) {
  Result<std::vector<VmaInfo>> r = ParseMaps(
      "1000-2000 r--p 00000000 08:01 12                         /a b/ (deleted) c\n"
      "2000-3000 r--p 00000000 08:01 13                         /x (deleted)\n"
      "ffffffffff600000-ffffffffff601000 r--p 0000000000000000 103:02 12345678901234567890 /long/prefix\n"
      "4000-5000 rw-p 00000000 00:00 0\n");
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ((*r)[0].path, "/a b/ (deleted) c");
  EXPECT_FALSE((*r)[0].deleted);
  EXPECT_EQ((*r)[1].path, "/x");
  EXPECT_TRUE((*r)[1].deleted);
  EXPECT_EQ((*r)[2].path, "/long/prefix");
  EXPECT_EQ((*r)[2].inode, 12345678901234567890u);
  EXPECT_EQ((*r)[2].dev_major, 0x103u);
  EXPECT_EQ((*r)[3].path, "");
  EXPECT_TRUE(ParseMaps("").ok());
  EXPECT_TRUE(ParseMaps("")->empty());
}

TEST(ProcMapsParse, MalformedLineIsAnErrorNamingItsNumber) {
  const std::string good = "1000-2000 r--p 00000000 00:00 0 \n";
  for (const char* bad : {"zz-2000 r--p 00000000 00:00 0", "3000-2000 r--p 00000000 00:00 0",
                          "2000-2000 r--p 00000000 00:00 0", "1000-2000 rwxq 00000000 00:00 0",
                          "1000-2000 r--p- 00000000 00:00 0", "1000-2000 r--p 0000000g 00:00 0",
                          "1000-2000 r--p 00000000 0000 0", "1000-2000 r--p 00000000 00:00 x",
                          "1000-2000 r--p 00000000 00:00 -1", "1000-2000 r--p", "1000-2000", "",
                          "10000000000000000-10000000000000001 r--p 00000000 00:00 0"}) {
    std::string maps_error = ErrorOf(ParseMaps(good + bad + "\n"));
    EXPECT_NE(maps_error.find("maps line 2"), std::string::npos) << "'" << bad << "' gave '" << maps_error << "'";
    std::string smaps_error = ErrorOf(ParseSmaps(good + bad + "\n"));
    EXPECT_NE(smaps_error.find("smaps line 2"), std::string::npos) << "'" << bad << "' gave '" << smaps_error << "'";
  }
  for (const char* bad : {"Rss: four kB", "Rss: 4 MB", "Rss: 4", "Swap: -1 kB", "VmFlags: rd abc"}) {
    std::string error = ErrorOf(ParseSmaps(good + bad + "\n"));
    EXPECT_NE(error.find("smaps line 2"), std::string::npos) << "'" << bad << "' gave '" << error << "'";
  }
  EXPECT_NE(ErrorOf(ParseSmaps("Rss: 4 kB\n" + good)).find("smaps line 1"), std::string::npos);
  EXPECT_FALSE(ParseMaps("Rss: 4 kB\n").ok());  // maps has no key lines
}

// ---- /proc/PID/fdinfo/FD ------------------------------------------------------

TEST(ProcFdinfoParse, PlainFileHasOnlyTheCommonLines) {
  Result<FdInfo> r = ParseFdinfo(Captured("fdinfo_stdin.txt"));
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_EQ(r->pos, 0u);
  EXPECT_EQ(r->flags, 0100000u);  // the kernel's O_LARGEFILE; glibc defines it as 0 on x86_64
  EXPECT_EQ(r->mnt_id, 23);
  EXPECT_EQ(r->ino, 3u);
  EXPECT_FALSE(r->eventfd_count || r->eventfd_id || r->signalfd_sigmask || r->is_timerfd);
  EXPECT_TRUE(r->epoll.empty() && r->inotify.empty());
}

TEST(ProcFdinfoParse, PtyMasterNamesItsPair) {
  Result<FdInfo> r = ParseFdinfo(Captured("fdinfo_ptmx.txt"));
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  ASSERT_TRUE(r->tty_index.has_value());
  EXPECT_EQ(*r->tty_index, 0);  // the first pair of the capture's devpts
  EXPECT_FALSE(ParseFdinfo(Captured("fdinfo_stdin.txt"))->tty_index.has_value());
}

TEST(ProcFdinfoParse, PidfdNamesItsProcessOrMinusOneOnceReaped) {
  Result<FdInfo> r = ParseFdinfo(Captured("fdinfo_pidfd.txt"));
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  ASSERT_TRUE(r->pidfd_pid.has_value());
  EXPECT_EQ(*r->pidfd_pid, 30788);  // the capture's running child
  EXPECT_EQ(r->flags, static_cast<uint32_t>(O_RDWR | O_NONBLOCK | O_CLOEXEC));
  r = ParseFdinfo(Captured("fdinfo_pidfd_reaped.txt"));
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  ASSERT_TRUE(r->pidfd_pid.has_value());
  EXPECT_EQ(*r->pidfd_pid, -1);
  EXPECT_FALSE(ParseFdinfo(Captured("fdinfo_stdin.txt"))->pidfd_pid.has_value());
  EXPECT_FALSE(ParseFdinfo("pos: 0\nflags: 02\nmnt_id: 4\nPid: -2\n").ok());
}

TEST(ProcFdinfoParse, EventfdCountIsHexAndFlagsOctal) {
  Result<FdInfo> r = ParseFdinfo(Captured("fdinfo_eventfd.txt"));
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_EQ(r->flags, static_cast<uint32_t>(O_RDWR | O_NONBLOCK | O_CLOEXEC));
  EXPECT_EQ(r->mnt_id, 17);
  EXPECT_EQ(r->ino, 26u);
  ASSERT_TRUE(r->eventfd_count.has_value());
  EXPECT_EQ(*r->eventfd_count, 5u + 37u);  // initial value + one write
  ASSERT_TRUE(r->eventfd_id.has_value());
  EXPECT_EQ(*r->eventfd_id, 1);
  EXPECT_FALSE(r->eventfd_semaphore);
  EXPECT_FALSE(r->is_timerfd);
}

TEST(ProcFdinfoParse, TimerfdGivesClockTicksAndTimesInNanoseconds) {
  Result<FdInfo> r = ParseFdinfo(Captured("fdinfo_timerfd.txt"));
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_TRUE(r->is_timerfd);
  EXPECT_EQ(r->flags, static_cast<uint32_t>(O_RDWR | O_NONBLOCK));
  EXPECT_EQ(r->timerfd_clockid, CLOCK_MONOTONIC);
  EXPECT_EQ(r->timerfd_ticks, 0u);
  EXPECT_EQ(r->timerfd_settime_flags, 0);
  EXPECT_EQ(r->timerfd_value_ns, 99'917'605'104);
  EXPECT_EQ(r->timerfd_interval_ns, 2'500'000'000);

  Result<FdInfo> abs = ParseFdinfo(Captured("fdinfo_timerfd_abstime.txt"));
  ASSERT_TRUE(abs.ok()) << ErrorOf(abs);
  EXPECT_TRUE(abs->is_timerfd);
  EXPECT_EQ(abs->timerfd_clockid, CLOCK_REALTIME);
  EXPECT_EQ(abs->timerfd_ticks, 1u);
  EXPECT_EQ(abs->timerfd_settime_flags, TFD_TIMER_ABSTIME);
  EXPECT_EQ(abs->timerfd_value_ns, 0);
  EXPECT_EQ(abs->timerfd_interval_ns, 10'000'000);
}

TEST(ProcFdinfoParse, SignalfdMaskHasBitNMinusOneForSignalN) {
  Result<FdInfo> r = ParseFdinfo(Captured("fdinfo_signalfd.txt"));
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  ASSERT_TRUE(r->signalfd_sigmask.has_value());
  // SIGUSR1 (10), SIGUSR2 (12), SIGRTMIN+1 (35).
  EXPECT_EQ(*r->signalfd_sigmask, (1ULL << 9) | (1ULL << 11) | (1ULL << 34));
}

TEST(ProcFdinfoParse, EpollListsEachTargetWithItsRegistration) {
  Result<FdInfo> r = ParseFdinfo(Captured("fdinfo_epoll.txt"));
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  ASSERT_EQ(r->epoll.size(), 2u);
  const EpollTarget& timer = r->epoll[0];  // the kernel lists them in its own order
  const EpollTarget& event = r->epoll[1];
  EXPECT_EQ(event.tfd, 3);
  EXPECT_EQ(event.events, static_cast<uint32_t>(EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLET));
  EXPECT_EQ(event.data, 0x1122334455667788u);
  EXPECT_EQ(event.pos, 0u);
  EXPECT_EQ(event.ino, 0x1au);
  EXPECT_EQ(event.sdev, 0x10u);
  EXPECT_EQ(timer.tfd, 4);
  EXPECT_EQ(timer.events, static_cast<uint32_t>(EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLRDHUP));
  EXPECT_EQ(timer.data, 4u);
}

TEST(ProcFdinfoParse, InotifyWatchesCarryMaskAndFileHandle) {
  Result<FdInfo> r = ParseFdinfo(Captured("fdinfo_inotify.txt"));
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  ASSERT_EQ(r->inotify.size(), 2u);
  const InotifyWatch& etc = r->inotify[0];
  EXPECT_EQ(etc.wd, 2);
  EXPECT_EQ(etc.ino, 0x13u);
  EXPECT_EQ(etc.sdev, 0xfe00000u);
  EXPECT_EQ(etc.mask, static_cast<uint32_t>(IN_MODIFY | IN_ATTRIB));
  EXPECT_EQ(etc.ignored_mask, 0u);
  EXPECT_EQ(etc.fhandle_bytes, 8u);
  EXPECT_EQ(etc.fhandle_type, 1);
  EXPECT_EQ(etc.f_handle_hex, "1300000000000000");
  const InotifyWatch& tmp = r->inotify[1];
  EXPECT_EQ(tmp.wd, 1);
  EXPECT_EQ(tmp.ino, 0x3c51au);
  EXPECT_EQ(tmp.mask, static_cast<uint32_t>(IN_CREATE | IN_DELETE));
  EXPECT_EQ(tmp.f_handle_hex, "1ac5030000000000");
}

TEST(ProcFdinfoParse, InotifyWatchDescriptorIsHex) {
  Result<FdInfo> r = ParseFdinfo(Captured("fdinfo_inotify_many.txt"));
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  ASSERT_EQ(r->inotify.size(), 11u);
  for (size_t i = 0; i < 11; i++) {
    EXPECT_EQ(r->inotify[i].wd, static_cast<int>(11 - i));  // printed "b", "a", "9", ...
    EXPECT_EQ(r->inotify[i].mask, static_cast<uint32_t>(IN_ALL_EVENTS));
  }
}

TEST(ProcFdinfoParse, UnknownLinesAreSkipped) {
  Result<FdInfo> r = ParseFdinfo(Captured("fdinfo_stdin.txt") +
                                 "lock:\t1: POSIX  ADVISORY  WRITE 4242 00:05:6 0 EOF\nPid:\t4242\nNSpid:\t4242\n");
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_EQ(r->mnt_id, 23);
}

TEST(ProcFdinfoParse, MalformedTextIsAnError) {
  const std::string common = "pos:\t0\nflags:\t02\nmnt_id:\t17\n";
  const std::string timer = common + "clockid: 1\nticks: 0\nsettime flags: 00\n";
  const std::string watch = common + "inotify wd:1 ino:13 sdev:fe00000 mask:6 ignored_mask:0 ";
  for (const std::string& bad : {
           std::string(""), std::string("flags:\t02\nmnt_id:\t17\n"), std::string("pos:\t0\nflags:\t02\n"),
           std::string("pos:\tx\nflags:\t02\nmnt_id:\t17\n"), std::string("pos:\t0\nflags:\t09\nmnt_id:\t17\n"),
           common + "no colon here\n", common + "\n", common + "ino:\t-1\n", common + "eventfd-count: zz\n",
           common + "eventfd-semaphore: 2\n", common + "sigmask:\t0x10\n",
           timer + "it_value: (1, 0)\n", timer + "it_value: (1, 1000000000)\nit_interval: (0, 0)\n",
           timer + "it_value: (1 0)\nit_interval: (0, 0)\n",
           timer + "it_value: (99999999999999999999, 0)\nit_interval: (0, 0)\n",
           common + "tfd:        3 events: 19 data: 4  pos:0 ino:1a\n",
           common + "tfd:        3 events: 19 data: 4  pos:0 ino:1a sdev:zz\n",
           common + "tfd:        3 events: 19 stray data: 4  pos:0 ino:1a sdev:10\n",
           watch + "fhandle-bytes:8 fhandle-type:1 f_handle:13\n",
           watch + "fhandle-bytes:1 fhandle-type:1 f_handle:zz\n",
           common + "inotify wd:1 ino:13 sdev:fe00000 ignored_mask:0\n"}) {
    EXPECT_FALSE(ParseFdinfo(bad).ok()) << "accepted: " << bad;
  }
  std::string error = ErrorOf(ParseFdinfo(common + "tfd: 3\n"));
  EXPECT_NE(error.find("line 4"), std::string::npos) << error;
}

// ---- /proc/PID/status ---------------------------------------------------------

TEST(ProcStatusParse, ReadsIdentityCredentialsAndSignals) {
  Result<ProcStatus> r = ParseProcStatus(Captured("status.txt"));
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_EQ(r->name, "capture");
  EXPECT_EQ(r->umask, 022u);
  EXPECT_EQ(r->state, 'R');
  EXPECT_EQ(r->tgid, 15535);
  EXPECT_EQ(r->pid, 15535);
  EXPECT_EQ(r->ppid, 15524);
  EXPECT_EQ(r->tracer_pid, 0);
  EXPECT_EQ(r->uid[0], 0u);
  EXPECT_TRUE(r->groups.empty());
  EXPECT_EQ(r->ns_pid, std::vector<int>{15535});
  EXPECT_EQ(r->ns_pgid, std::vector<int>{15524});
  EXPECT_EQ(r->ns_sid, std::vector<int>{13622});
  EXPECT_EQ(r->threads, 1);
  EXPECT_EQ(r->sig_pnd, 0u);
  EXPECT_EQ(r->sig_blk, (1ULL << 9) | (1ULL << 11) | (1ULL << 34));
  EXPECT_EQ(r->cap_prm, 0x1fffeffffffu);
  EXPECT_EQ(r->cap_eff, 0x1fffeffffffu);
  EXPECT_EQ(r->cap_bnd, 0x1fffeffffffu);
  EXPECT_EQ(r->cap_amb, 0u);
  EXPECT_FALSE(r->no_new_privs);
  EXPECT_EQ(r->seccomp, 0);
  EXPECT_EQ(r->seccomp_filters, 0);
}

TEST(ProcStatusParse, ConfinedProcessInAPidNamespace) {
  Result<ProcStatus> r = ParseProcStatus(Captured("status_confined.txt"));
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_EQ(r->umask, 027u);
  for (const uint32_t* ids : {r->uid, r->gid}) {
    EXPECT_EQ(ids[0], 1000u);  // real
    EXPECT_EQ(ids[1], 1001u);  // effective
    EXPECT_EQ(ids[2], 1002u);  // saved
    EXPECT_EQ(ids[3], 1001u);  // filesystem follows effective
  }
  EXPECT_EQ(r->groups, (std::vector<uint32_t>{10, 20, 1000}));
  EXPECT_EQ(r->ns_pid, (std::vector<int>{15539, 1}));
  EXPECT_EQ(r->ns_pgid, (std::vector<int>{15524, 0}));
  EXPECT_EQ(r->sig_ign, 1ULL << 12);  // SIGPIPE
  EXPECT_EQ(r->sig_cgt, 1ULL << 0);   // SIGHUP
  EXPECT_EQ(r->cap_prm, 0u);
  EXPECT_TRUE(r->no_new_privs);
  EXPECT_EQ(r->seccomp, 2);
  EXPECT_EQ(r->seccomp_filters, 2);
}

TEST(ProcStatusParse, NameEscapesAreUndone) {
  Result<ProcStatus> r = ParseProcStatus(Captured("status_oddname.txt"));
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  EXPECT_EQ(r->name, "a\\b\nc d)(");
}

TEST(ProcStatusParse, LineageIsReadFromAZombieToo) {
  const std::string zombie = Captured("status_zombie.txt");
  EXPECT_FALSE(ParseProcStatus(zombie).ok());  // no Umask line, among others
  Result<ProcLineage> l = ParseProcLineage(zombie);
  ASSERT_TRUE(l.ok()) << ErrorOf(l);
  EXPECT_EQ(l->tgid, 5478);
  EXPECT_EQ(l->ppid, 5477);
  l = ParseProcLineage(Captured("status.txt"));
  ASSERT_TRUE(l.ok()) << ErrorOf(l);
  EXPECT_EQ(l->tgid, 15535);
  EXPECT_EQ(l->ppid, 15524);
  EXPECT_NE(ErrorOf(ParseProcLineage("Name:\tx\nTgid:\t5\n")).find("no PPid line"), std::string::npos);
  EXPECT_NE(ErrorOf(ParseProcLineage("Tgid:\tfive\nPPid:\t1\n")).find("bad Tgid"), std::string::npos);
}

TEST(ProcStatusParse, MissingOrMalformedLineIsAnErrorNamingIt) {
  const std::string good = Captured("status.txt");
  auto without = [&](const std::string& key) {
    size_t at = good.find("\n" + key + ":");
    EXPECT_NE(at, std::string::npos) << key;
    size_t end = good.find('\n', at + 1);
    return good.substr(0, at) + good.substr(end);
  };
  auto replaced = [&](const std::string& key, const std::string& value) {
    return without(key) + key + ":\t" + value + "\n";
  };
  EXPECT_NE(ErrorOf(ParseProcStatus(without("Seccomp_filters"))).find("Seccomp_filters"), std::string::npos);
  EXPECT_NE(ErrorOf(ParseProcStatus(without("NSpid"))).find("NSpid"), std::string::npos);
  EXPECT_NE(ErrorOf(ParseProcStatus(without("CapAmb"))).find("CapAmb"), std::string::npos);
  EXPECT_FALSE(ParseProcStatus("").ok());
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"Uid", "1\t2\t3"}, {"Uid", "1\t2\t3\t4\t5"}, {"Gid", "a\tb\tc\td"}, {"Umask", "0089"},
           {"State", "RS (odd)"}, {"State", ""}, {"Groups", "10 x"}, {"NSpid", ""}, {"SigBlk", "zz"},
           {"CapEff", "10000000000000000"}, {"NoNewPrivs", "2"}, {"Seccomp", "two"}, {"Threads", "-"}}) {
    std::string error = ErrorOf(ParseProcStatus(replaced(key, value)));
    EXPECT_NE(error.find(key), std::string::npos) << key << " '" << value << "' gave '" << error << "'";
  }
  std::string bad_name = good;
  bad_name.replace(0, bad_name.find('\n'), "Name:\ta\\x");
  EXPECT_FALSE(ParseProcStatus(bad_name).ok());
}

// ---- /proc/PID/timers ---------------------------------------------------------

TEST(ProcTimersParse, ReadsEachNotifyKind) {
  Result<std::vector<PosixTimerInfo>> r = ParseProcTimers(Captured("timers.txt"));
  ASSERT_TRUE(r.ok()) << ErrorOf(r);
  ASSERT_EQ(r->size(), 3u);
  const PosixTimerInfo& none = (*r)[0];
  EXPECT_EQ(none.id, 2);
  EXPECT_EQ(none.signo, 0);
  EXPECT_EQ(none.notify, "none");
  EXPECT_FALSE(none.notify_to_thread);
  EXPECT_EQ(none.notify_tid, 15535);
  EXPECT_EQ(none.clockid, -6);  // CLOCK_PROCESS_CPUTIME_ID of the caller
  const PosixTimerInfo& thread = (*r)[1];
  EXPECT_EQ(thread.id, 1);
  EXPECT_EQ(thread.signo, 10);
  EXPECT_EQ(thread.sigval, 42u);
  EXPECT_EQ(thread.notify, "signal");
  EXPECT_TRUE(thread.notify_to_thread);
  EXPECT_EQ(thread.notify_tid, 15535);
  EXPECT_EQ(thread.clockid, CLOCK_REALTIME);
  const PosixTimerInfo& signal = (*r)[2];
  EXPECT_EQ(signal.id, 0);
  EXPECT_EQ(signal.signo, 34);
  EXPECT_EQ(signal.sigval, 0x7f00deadbeefu);
  EXPECT_EQ(signal.notify, "signal");
  EXPECT_FALSE(signal.notify_to_thread);
  EXPECT_EQ(signal.clockid, CLOCK_MONOTONIC);
}

TEST(ProcTimersParse, MalformedBlockIsAnErrorNamingTheLine) {
  EXPECT_TRUE(ParseProcTimers("").ok());
  EXPECT_TRUE(ParseProcTimers("")->empty());
  const std::string one = "ID: 1\nsignal: 14/0000000000000000\nnotify: thread/pid.7\nClockID: 1\n";
  ASSERT_TRUE(ParseProcTimers(one).ok());
  EXPECT_EQ((*ParseProcTimers(one))[0].notify, "thread");
  for (const std::string& bad :
       {std::string("ID: 1\nsignal: 14/0\nnotify: signal/pid.7\n"), std::string("signal: 14/0\n"),
        std::string("ID: x\nsignal: 14/0\nnotify: signal/pid.7\nClockID: 1\n"),
        std::string("ID: 1\nsignal: 14\nnotify: signal/pid.7\nClockID: 1\n"),
        std::string("ID: 1\nsignal: 14/0x1\nnotify: signal/pid.7\nClockID: 1\n"),
        std::string("ID: 1\nsignal: 14/0\nnotify: bogus/pid.7\nClockID: 1\n"),
        std::string("ID: 1\nsignal: 14/0\nnotify: signal/xid.7\nClockID: 1\n"),
        std::string("ID: 1\nsignal: 14/0\nnotify: signal/pid.\nClockID: 1\n"),
        std::string("ID: 1\nsignal: 14/0\nnotify: signal\nClockID: 1\n"),
        std::string("ID: 1\nsignal: 14/0\nnotify: signal/pid.7\nClockID: one\n")}) {
    EXPECT_FALSE(ParseProcTimers(bad).ok()) << "accepted: " << bad;
  }
  std::string error = ErrorOf(ParseProcTimers(one + "ID: 2\nnotify: none/pid.7\n"));
  EXPECT_NE(error.find("line 6"), std::string::npos) << error;
}

// ---- every parser, on cut and damaged captured text -------------------------

// Runs every parser on `text`; none may crash, whatever the text.
void ParseWithAll(const std::string& text) {
  ProcStat stat;
  ParseProcStat(text, &stat);
  Status children_error;
  ParseChildrenList(text, &children_error);
  (void)ParseMaps(text);
  (void)ParseSmaps(text);
  (void)ParseFdinfo(text);
  (void)ParseProcStatus(text);
  (void)ParseProcTimers(text);
}

TEST(ProcParseRobustness, CutAndDamagedCapturedTextNeverCrashes) {
  for (const char* name : {"stat.txt", "stat_oddname.txt", "children.txt", "maps.txt", "smaps.txt",
                           "fdinfo_epoll.txt", "fdinfo_eventfd.txt", "fdinfo_inotify.txt", "fdinfo_signalfd.txt",
                           "fdinfo_timerfd.txt", "status.txt", "status_confined.txt", "timers.txt"}) {
    const std::string text = Captured(name);
    ASSERT_FALSE(text.empty()) << name;
    size_t step = text.size() / 300 + 1;  // a few hundred cuts a file
    for (size_t cut = 0; cut <= text.size(); cut += step) {
      ParseWithAll(text.substr(0, cut));
      for (char c : {'\0', '\n', ' ', ':', '(', ')', '-', 'f', '9'}) {
        std::string damaged = text;
        damaged[cut < text.size() ? cut : 0] = c;
        ParseWithAll(damaged);
      }
    }
  }
}

TEST(ProcLimitsParse, ReadsEveryResourceInOrder) {
  Result<std::string> text = ReadFile(std::string(ROAM_TEST_DATA) + "/proc/limits.txt");
  ASSERT_TRUE(text.ok());
  Result<std::vector<ProcLimit>> l = ParseProcLimits(*text);
  ASSERT_TRUE(l.ok()) << l.status().message();
  ASSERT_EQ(l->size(), 16u);
  EXPECT_EQ((*l)[0].soft, ~uint64_t{0});  // cpu time: unlimited
  EXPECT_EQ((*l)[7].soft, 20000u);        // open files, as captured
  EXPECT_EQ((*l)[7].hard, 20000u);
}

TEST(ProcLimitsParse, RefusesMalformedText) {
  EXPECT_FALSE(ParseProcLimits("").ok());
  EXPECT_FALSE(ParseProcLimits("garbage\n").ok());
  EXPECT_FALSE(ParseProcLimits("Limit                     Soft Limit           Hard Limit           Units\n"
                               "Max cpu time              lots                 unlimited            seconds\n").ok());
  EXPECT_FALSE(ParseProcLimits("Limit                     Soft Limit           Hard Limit           Units\nshort\n").ok());
}

}  // namespace
}  // namespace roam
