// /proc and cgroup parsing of the load sampler, against captured text.
#include "node/load_sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/proc_sample.h"
#include "common/proc_stat.h"

namespace roam {
namespace {

TEST(LoadParse, MemInfoGivesTotalAndAvailableInBytes) {
  const char* text =
      "MemTotal:       24683620 kB\nMemFree:         1638232 kB\nMemAvailable:   20191772 kB\n"
      "Buffers:          411412 kB\n";
  MemInfo m = ParseMemInfo(text);
  EXPECT_EQ(m.total, 24683620ULL * 1024);
  EXPECT_EQ(m.available, 20191772ULL * 1024);
}

TEST(LoadParse, InactiveFileIsTheHierarchyTotal) {
  EXPECT_EQ(ParseInactiveFile("cache 100\ninactive_file 7\nhierarchical_memory_limit 9\ntotal_inactive_file 4096\n"),
            4096u);
  EXPECT_EQ(ParseInactiveFile("cache 100\ninactive_file 7\n"), 0u);
  EXPECT_EQ(ParseInactiveFile(""), 0u);
}

TEST(LoadParse, PressureReadsSomeAvg10) {
  EXPECT_DOUBLE_EQ(ParsePressureSomeAvg10("some avg10=1.25 avg60=0.50 avg300=0.00 total=1234\n"
                                          "full avg10=0.75 avg60=0.00 avg300=0.00 total=99\n"),
                   1.25);
  EXPECT_DOUBLE_EQ(ParsePressureSomeAvg10(""), 0);
  EXPECT_DOUBLE_EQ(ParsePressureSomeAvg10("some avg10=nan"), 0);
}

TEST(LoadParse, CgroupPathFindsControllerInCombinedLines) {
  const char* text =
      "9:name=systemd:/\n4:memory:/process_api/4c27/roam-demo/n2\n2:cpu,cpuacct:/roam-demo/n2\n0::/\n";
  EXPECT_EQ(CgroupPathFor(text, "memory"), "/process_api/4c27/roam-demo/n2");
  EXPECT_EQ(CgroupPathFor(text, "cpu"), "/roam-demo/n2");
  EXPECT_EQ(CgroupPathFor(text, "cpuacct"), "/roam-demo/n2");
  EXPECT_EQ(CgroupPathFor(text, "pids"), "");
}

TEST(ProcStatParse, SurvivesParenthesesAndSpacesInTheCommand) {
  const char* stat =
      "4242 (my (odd) prog) R 17 4242 4242 0 -1 4194304 120 0 0 0 150 25 0 0 20 0 1 0 12345 1000 10 "
      "18446744073709551615\n";
  ProcStat ps;
  ASSERT_TRUE(ParseProcStat(stat, &ps));
  EXPECT_EQ(ps.pid, 4242);
  EXPECT_EQ(ps.comm, "my (odd) prog");
  EXPECT_EQ(ps.state, 'R');
  EXPECT_EQ(ps.ppid, 17);
  EXPECT_EQ(ps.cpu_ticks, 175u);
  EXPECT_FALSE(ParseProcStat("garbage", &ps));
  EXPECT_FALSE(ParseProcStat("1 (x) S 1 2", &ps));
  EXPECT_FALSE(ParseProcStat("0 (x) S 1 2 3 4 5 6 7 8 9 10 11 12", &ps));
}

TEST(LoadParse, SchedstatAndProcsRunning) {
  EXPECT_EQ(ParseSchedstat("618849395 2350532779 38\n"), 618849395ull + 2350532779ull);
  EXPECT_EQ(ParseSchedstat("garbage"), 0u);
  EXPECT_EQ(ParseSchedstat("12"), 0u);
  // A throttled CPU-bound process: ran 0.4 s and waited 1.6 s of 2 s: it wanted one CPU.
  EXPECT_NEAR(CpuDemand(221305653 + 752153060, 618849395 + 2350532779, 2000), 1.0, 0.01);
  EXPECT_EQ(CpuDemand(0, 5000000, 1000), 0) << "no baseline yet";
  EXPECT_EQ(CpuDemand(9, 5, 1000), 0) << "a restored process starts again from 0";
  EXPECT_EQ(ParseProcsRunning("cpu  1 2 3 4 5 6 7 8\nprocs_running 3\nprocs_blocked 0\n"), 3);
  EXPECT_EQ(ParseProcsRunning("cpu  1 2 3 4 5 6 7 8\n"), 0);
}

TEST(LoadParse, CpuLineSplitsBusyFromIdle) {
  uint64_t busy = 0, total = 0;
  ASSERT_TRUE(ParseCpuLine("cpu  100 5 50 800 40 3 2 0 0 0\ncpu0 1 2 3 4 5 6 7 8\n", &busy, &total));
  EXPECT_EQ(total, 1000u);
  EXPECT_EQ(busy, 160u);
  EXPECT_FALSE(ParseCpuLine("intr 1 2 3", &busy, &total));
}

TEST(LoadSample, RealSampleOfThisMachineIsSane) {
  LoadSampler s;
  s.Sample(1000);
  pb::LoadVector v = s.Sample(1000);
  EXPECT_GE(v.cpus(), 1u);
  EXPECT_GT(v.cpu_share(), 0);
  EXPECT_LE(v.cpu_share(), v.cpus());
  EXPECT_GT(v.mem_total(), 0u);
  EXPECT_LE(v.mem_free(), v.mem_total());
  EXPECT_GE(v.cpu_util(), 0);
  EXPECT_LE(v.cpu_util(), 1);
}

TEST(LoadSample, CalibratedSpeedIsPositive) { EXPECT_GT(LoadSampler::CalibrateSpeed(), 0u); }

TEST(LoadParse, CgroupV2PathAndCpuMax) {
  EXPECT_EQ(CgroupPathFor("0::/system.slice/roamd.service\n", ""), "/system.slice/roamd.service");
  EXPECT_EQ(CgroupPathFor("4:memory:/a\n2:cpu,cpuacct:/b\n", ""), "");
  EXPECT_EQ(CgroupPathFor("0::/system.slice/roamd.service\n", "cpu"), "");
  EXPECT_DOUBLE_EQ(ParseCpuMax("150000 100000\n"), 1.5);
  EXPECT_DOUBLE_EQ(ParseCpuMax("max 100000\n"), 0);
  EXPECT_DOUBLE_EQ(ParseCpuMax("garbage"), 0);
  EXPECT_EQ(ParseInactiveFile("anon 5\ninactive_file 4096\nactive_file 1\n", /*unified=*/true), 4096u);
  EXPECT_EQ(ParseInactiveFile("anon 5\ninactive_file 4096\n"), 0u);  // v1 wants the hierarchy's total
}

// A machine booted with the unified hierarchy (Debian 12's default), roamd
// under a unit with CPUQuota=150% inside a slice limited to 1 CPU and
// MemoryMax=: the tightest limits count. A tree of files, not a machine.
TEST(LoadSample, CgroupV2LimitsOfTheUnitAndItsSlice) {
  char tmpl[] = "/tmp/roam-cg2-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string root = tmpl;
  auto put = [&](const std::string& rel, const std::string& text) {
    const std::string path = root + rel;
    ASSERT_EQ(system(("mkdir -p '" + path.substr(0, path.rfind('/')) + "'").c_str()), 0);
    FILE* f = fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    fputs(text.c_str(), f);
    fclose(f);
  };
  put("/proc/self/cgroup", "0::/system.slice/roamd.service\n");
  put("/proc/meminfo", "MemTotal: 16777216 kB\nMemAvailable: 8388608 kB\n");
  put("/cg/system.slice/cpu.max", "100000 100000\n");
  put("/cg/system.slice/memory.max", "max\n");
  put("/cg/system.slice/roamd.service/cpu.max", "150000 100000\n");
  put("/cg/system.slice/roamd.service/memory.max", "1073741824\n");
  put("/cg/system.slice/roamd.service/memory.current", "536870912\n");
  put("/cg/system.slice/roamd.service/memory.stat", "anon 1\ninactive_file 268435456\n");
  LoadSampler s(root + "/proc", root + "/cg");
  pb::LoadVector v = s.Sample(1000);
  EXPECT_DOUBLE_EQ(v.cpu_share(), std::min(1.0, static_cast<double>(v.cpus())));
  EXPECT_EQ(v.mem_total(), 1073741824u);
  EXPECT_EQ(v.mem_free(), 1073741824u - (536870912u - 268435456u));
  // Without limits anywhere: the machine's own figures.
  put("/cg/system.slice/cpu.max", "max 100000\n");
  put("/cg/system.slice/roamd.service/cpu.max", "max 100000\n");
  put("/cg/system.slice/roamd.service/memory.max", "max\n");
  v = s.Sample(1000);
  EXPECT_DOUBLE_EQ(v.cpu_share(), v.cpus());
  EXPECT_EQ(v.mem_total(), 16777216ull * 1024);
  EXPECT_EQ(v.mem_free(), 8388608ull * 1024);
  ASSERT_EQ(system(("rm -rf '" + root + "'").c_str()), 0);
}

}  // namespace
}  // namespace roam
