// The kernel feature probe behind `roam check`: the report's format on
// made-up checks, and the real probes on this machine (which runs the tests
// as root on a kernel with everything the engine needs).
#include "ckpt/kernel_features.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/file_util.h"

namespace roam {
namespace {

// ---- the report, on made-up checks -------------------------------------------

TEST(FeatureReport, PrintsOneLinePerCheckThenOkWhenEveryRequiredOneIsPresent) {
  std::vector<FeatureCheck> checks = {
      {"ptrace seize/interrupt", true, true, "stopped pid 4242"},
      {"kcmp", true, true, ""},
      {"soft-dirty", false, false, "bit 55 stays clear"},
  };
  EXPECT_EQ(RenderFeatureReport(checks),
            "ok      ptrace seize/interrupt: stopped pid 4242\n"
            "ok      kcmp\n"
            "no      soft-dirty: bit 55 stays clear\n"
            "ok\n");
  EXPECT_TRUE(AllRequiredPresent(checks));
}

TEST(FeatureReport, NamesEveryMissingRequiredCheckInOrderButNoOptionalOne) {
  std::vector<FeatureCheck> checks = {
      {"clone3 set_tid", false, true, "clone3 with set_tid: EPERM (needs CAP_SYS_ADMIN)"},
      {"pagemap scan", false, false, "ioctl PAGEMAP_SCAN: ENOTTY"},
      {"kcmp", true, true, "ok"},
      {"timerfd set ticks", false, true, "ioctl TFD_IOC_SET_TICKS: ENOTTY"},
  };
  EXPECT_EQ(RenderFeatureReport(checks),
            "MISSING clone3 set_tid: clone3 with set_tid: EPERM (needs CAP_SYS_ADMIN)\n"
            "no      pagemap scan: ioctl PAGEMAP_SCAN: ENOTTY\n"
            "ok      kcmp: ok\n"
            "MISSING timerfd set ticks: ioctl TFD_IOC_SET_TICKS: ENOTTY\n"
            "missing: clone3 set_tid, timerfd set ticks\n");
  EXPECT_FALSE(AllRequiredPresent(checks));
}

TEST(FeatureReport, AnOptionalCheckAloneNeverMakesTheReportFail) {
  std::vector<FeatureCheck> checks = {{"soft-dirty", false, false, ""}};
  EXPECT_TRUE(AllRequiredPresent(checks));
  EXPECT_EQ(RenderFeatureReport(checks), "no      soft-dirty\nok\n");
  EXPECT_EQ(RenderFeatureReport({}), "ok\n");
}

// ---- the real probes ---------------------------------------------------------

std::set<std::string> OpenFds() {
  std::set<std::string> fds;
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) return fds;
  while (dirent* e = readdir(dir)) fds.insert(e->d_name);
  closedir(dir);
  fds.erase(".");
  fds.erase("..");
  return fds;  // includes the DIR's own fd, the same one each time
}

// The children of every thread of this process, as the kernel lists them.
std::string ChildrenOfEveryThread() {
  std::string all;
  DIR* dir = opendir("/proc/self/task");
  if (!dir) return "?";
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    Result<std::string> text = ReadFile(std::string("/proc/self/task/") + e->d_name + "/children");
    all += text.ok() ? *text : "?";
  }
  closedir(dir);
  return all;
}

// Probes once for the whole suite, noting fds and children around the run.
class KernelProbe : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    fds_before_ = new std::set<std::string>(OpenFds());
    children_before_ = new std::string(ChildrenOfEveryThread());
    checks_ = new std::vector<FeatureCheck>(ProbeKernelFeatures());
    fds_after_ = new std::set<std::string>(OpenFds());
    children_after_ = new std::string(ChildrenOfEveryThread());
  }
  static const FeatureCheck* Find(const std::string& name) {
    for (const FeatureCheck& c : *checks_) {
      if (c.name == name) return &c;
    }
    return nullptr;
  }

  static std::set<std::string>* fds_before_;
  static std::set<std::string>* fds_after_;
  static std::string* children_before_;
  static std::string* children_after_;
  static std::vector<FeatureCheck>* checks_;
};
std::set<std::string>* KernelProbe::fds_before_;
std::set<std::string>* KernelProbe::fds_after_;
std::string* KernelProbe::children_before_;
std::string* KernelProbe::children_after_;
std::vector<FeatureCheck>* KernelProbe::checks_;

TEST_F(KernelProbe, EveryRequiredFeatureIsPresentOnThisMachine) {
  ASSERT_EQ(geteuid(), 0u) << "these tests run as root on the development machine";
  for (const FeatureCheck& c : *checks_) {
    if (c.required) {
      EXPECT_TRUE(c.ok) << c.name << ": " << c.detail;
    }
  }
  EXPECT_TRUE(AllRequiredPresent(*checks_)) << RenderFeatureReport(*checks_);
}

TEST_F(KernelProbe, ProbesEveryFeatureTheEngineNeedsUnderAUniqueName) {
  const char* required[] = {"architecture",           "xsave",
                            "ptrace seize/interrupt", "ptrace xstate regset",
                            "ptrace syscall info",    "ptrace rseq configuration",
                            "ptrace sigmask",         "ptrace peeksiginfo",
                            "process_vm_readv",       "/proc/PID/map_files",
                            "/proc/PID/pagemap",      "clone3 set_tid",
                            "prctl PR_SET_MM_MAP",    "kcmp",
                            "pidfd_open/pidfd_getfd", "/proc/PID/task/TID/children",
                            "timerfd set ticks",      "vdso mremap"};
  const char* optional[] = {"userfaultfd wp-async", "pagemap scan", "soft-dirty", "pid_max"};
  for (const char* name : required) {
    const FeatureCheck* c = Find(name);
    ASSERT_NE(c, nullptr) << name;
    EXPECT_TRUE(c->required) << name;
  }
  for (const char* name : optional) {
    const FeatureCheck* c = Find(name);
    ASSERT_NE(c, nullptr) << name;
    EXPECT_FALSE(c->required) << name;
  }
  std::set<std::string> names;
  for (const FeatureCheck& c : *checks_) {
    EXPECT_TRUE(names.insert(c.name).second) << "duplicate " << c.name;
    EXPECT_EQ(c.name.find(','), std::string::npos) << c.name;  // would garble "missing: a, b"
    EXPECT_FALSE(c.detail.empty()) << c.name;
  }
  EXPECT_EQ(names.size(), std::size(required) + std::size(optional));
}

TEST_F(KernelProbe, LeavesNoChildOrFdBehind) {
  EXPECT_EQ(*fds_before_, *fds_after_);
  EXPECT_EQ(*children_before_, *children_after_);
  EXPECT_EQ(*children_after_, "");
}

TEST_F(KernelProbe, ReportsPidMaxAndTheDirtyTrackingThisKernelOffers) {
  Result<std::string> pid_max = ReadFile("/proc/sys/kernel/pid_max");
  ASSERT_TRUE(pid_max.ok());
  const FeatureCheck* c = Find("pid_max");
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(c->ok);
  EXPECT_EQ(c->detail.rfind(pid_max->substr(0, pid_max->find('\n')), 0), 0u) << c->detail;
  // Field notes: kernel 6.18 with WP_ASYNC and PAGEMAP_SCAN, without soft-dirty.
  EXPECT_TRUE(Find("userfaultfd wp-async")->ok) << Find("userfaultfd wp-async")->detail;
  EXPECT_TRUE(Find("pagemap scan")->ok) << Find("pagemap scan")->detail;
}

TEST_F(KernelProbe, XsaveLineCarriesXcr0AndTheAreaSize) {
  CpuXsaveInfo x = ProbeXsave();
  EXPECT_EQ(x.xcr0 & 0x7, 0x7u);             // x87, SSE and AVX state (field notes: AVX, AVX-512, PKU)
  EXPECT_GE(x.xsave_size, 512u + 64 + 256);  // legacy area, header, AVX upper halves
  const FeatureCheck* c = Find("xsave");
  ASSERT_NE(c, nullptr);
  std::ostringstream xcr0;
  xcr0 << "xcr0 0x" << std::hex << x.xcr0;
  EXPECT_NE(c->detail.find(xcr0.str()), std::string::npos) << c->detail;
  EXPECT_NE(c->detail.find(std::to_string(x.xsave_size) + " bytes"), std::string::npos) << c->detail;
}

TEST(CheckCommand, PrintsTheReportAndExitsZeroWhenEverythingRequiredIsPresent) {
  testing::internal::CaptureStdout();
  int code = RunCheckCommand();
  std::string out = testing::internal::GetCapturedStdout();
  EXPECT_EQ(code, 0) << out;
  ASSERT_GE(out.size(), 4u);
  EXPECT_EQ(out.substr(out.size() - 4), "\nok\n") << out;
  EXPECT_EQ(out.rfind("ok      architecture: x86_64", 0), 0u) << out;
}

}  // namespace
}  // namespace roam
