// The per-process kernel state that is not memory or files: signals,
// timers, credentials, limits, rseq, robust futexes and the small prctl
// bits. Each Dump* reads it from the frozen process (from /proc, through
// ptrace, or by a system call injected into it, whose results land in the
// `scratch` area mapped in the process); each Restore* puts it back into
// the seed by injected system calls, using the seed's scratch area.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "ckpt/clone_pid.h"
#include "ckpt/tracee.h"
#include "common/status.h"
#include "image.pb.h"

namespace roam {

// signals.cc
Status DumpSignals(Tracee& t, uint64_t scratch, pb::ProcessImage* proc);
Status RestoreSignalHandlers(Tracee& t, uint64_t scratch, const pb::ProcessImage& proc);
// Queues the pending signals again. REQUIRES: signals blocked in the seed.
Status RestorePendingSignals(Tracee& t, uint64_t scratch, const pb::ProcessImage& proc);
// A thread's alternate stack, mask and own pending queue (the handlers
// and the process-wide queue are the process's).
Status DumpThreadSignals(Tracee& t, uint64_t scratch, pb::ThreadImage* thread);
// REQUIRES: signals blocked in the thread.
Status RestoreThreadSignals(Tracee& t, uint64_t scratch, const pb::ThreadImage& thread);
// Queues signals taken aside while seizing (Tracee::stolen_signals).
Status RequeueSignals(Tracee& t, uint64_t scratch, const std::vector<std::string>& siginfos);

// Leaving home, the root execs its deputy with its PID, and an exec keeps
// the pending queues of the process and of that thread. The signals the
// image carries are delivered by its copy on the target, so they must not
// stay pending in the deputy too (it would pass them on a second time, or
// die of one): drops them, keeping any that came after the dump, and the
// engine's own SIGCONT of a stopped process.
// RequeueDropped puts them back, should the exec fail.
// REQUIRES: signals blocked in the process.
struct DroppedSignals {
  std::vector<std::string> shared, thread;
};
Result<DroppedSignals> DropDumpedSignals(Tracee& t, uint64_t scratch, const pb::ProcessImage& proc);
Status RequeueDropped(Tracee& t, uint64_t scratch, const DroppedSignals& dropped);

// timers.cc
Status DumpTimers(Tracee& t, uint64_t scratch, pb::ProcessImage* proc);
Status RestoreTimers(Tracee& t, uint64_t scratch, const pb::ProcessImage& proc);

// creds.cc: uid/gid/groups/capabilities/securebits. Restore comes last
// among privileged steps: once the uid is not 0 the seed cannot do them.
Status DumpCreds(Tracee& t, uint64_t scratch, pb::ProcessImage* proc);
// A thread's own credentials, into out->creds, when they differ from its
// process's `process` (which DumpCreds read from the leader).
Status DumpThreadCreds(pid_t pid, pid_t tid, const pb::Creds& process, pb::ThreadImage* out);
// Sets `c` in the task `t` (the leader or one thread).
Status RestoreCreds(Tracee& t, uint64_t scratch, const pb::Creds& c);
// For a restore into a process that exists and runs as the user (a deputy):
// its credentials must already be the image's, since it may not change
// them. Ok, or an error naming what differs. Looks only, touches nothing.
Status CheckCredsUnchanged(pid_t pid, const pb::ProcessImage& proc);

// task_misc.cc: identity in the tree, rseq, robust list, tid address,
// personality, name, dumpable, no_new_privs, pdeathsig, subreaper,
// seccomp mode, rlimits, cwd, root, umask, mm bounds and auxv. A removed
// cwd is recorded by its old path; the caller adds it (cwd_file).
Status DumpTaskMisc(Tracee& t, uint64_t scratch, pb::ProcessImage* proc);
// Everything above that is set by injection, except rseq. `cwd_fd`: the
// process's fd of its removed working directory made again (cwd_file),
// -1 when it has its path.
Status RestoreTaskMisc(Tracee& t, uint64_t scratch, const pb::ProcessImage& proc, int cwd_fd);
// Unregisters the seed's own rseq area. REQUIRES: before its memory goes.
Status DropSeedRseq(Tracee& t);
// The leader's (pb::ProcessImage) or a thread's (pb::ThreadImage).
template <typename Image>
Status RestoreRseq(Tracee& t, const Image& in);
// A thread's name, robust list, clear_child_tid and rseq.
Status DumpThreadMisc(Tracee& t, uint64_t scratch, pb::ThreadImage* thread);
Status RestoreThreadMisc(Tracee& t, uint64_t scratch, const pb::ThreadImage& thread);
// rlimits, after its memory (a lower RLIMIT_AS could forbid the mappings).
// `from_outside`: set by the restorer (root) with prlimit on the PID; else
// by the process itself, with its own rights (a rebuild in place).
Status RestoreRlimits(Tracee& t, uint64_t scratch, const pb::ProcessImage& proc, bool from_outside);
// sched.cc: CPU affinity, nice and scheduling policy, read and set from
// outside the process (no injection). The affinity is kept to the CPUs
// this node has: where none of the recorded ones exists, every CPU here.
// `from_outside` false (a rebuild in place, the user's own process): only
// what the user could set on it — affinity, a nice no lower than it has,
// and the non-real-time policies.
// The dump reads the mask the process had before the engine held it on one
// CPU (Tracee::HoldOnThisCpu).
// Per-process knobs (knobs.cc): oom_score_adj, coredump_filter, and the
// prctl settings THP off, timer slack, machine-check kill policy, TSC.
// `from_outside` false (a rebuild in place): oom_score_adj is only raised.
Status DumpKnobs(Tracee& t, uint64_t scratch, pb::ProcessImage* proc);
Status RestoreKnobs(Tracee& t, const pb::ProcessImage& proc, bool from_outside);

// Per thread: `Image` is pb::ProcessImage (the leader) or pb::ThreadImage.
template <typename Image>
Status DumpSched(const Tracee& t, Image* proc);
template <typename Image>
Status RestoreSched(pid_t pid, const Image& proc, bool from_outside);
// Strict seccomp, the very last call the process makes for the engine.
Status RestoreSeccomp(Tracee& t, const pb::ProcessImage& proc);

// threads.cc: the threads besides the leader (ThreadImage).
// A process in group stop: every thread but the leader attached (not
// waited for), before the leader's seize lifts the stop with SIGCONT.
Status AttachStoppedThreads(pid_t pid, std::vector<std::unique_ptr<Tracee>>* threads);
// Seizes every thread of the leader's process not in *threads yet, until a
// pass over /proc/PID/task finds none. REQUIRES: the leader seized.
Status SeizeThreads(const Tracee& leader, std::vector<std::unique_ptr<Tracee>>* threads);
// Reads a seized thread; it is left with its signals blocked and
// `syscall_ip` set (resume it as the leader: ResumeRegs, RestoreSigmask).
// `scratch`: the process's scratch area (the leader mapped it).
Status DumpThread(Tracee& t, uint64_t syscall_ip, uint64_t scratch, pb::ThreadImage* out);
// Makes the process's threads by clones injected into the leader, each
// with its TID (through `ask_pid` if the leader may not choose: a rebuild
// in place), held, with its name, ids, rseq, alternate stack and pending
// signals set. REQUIRES: the leader's memory and process-wide state
// restored, its signals blocked, its credentials still the restorer's.
Status MakeThreads(Tracee& leader, uint64_t scratch, const pb::ProcessImage& proc, const PidAsker& ask_pid,
                   std::vector<std::unique_ptr<Tracee>>* threads);
// Last: its mask, XSAVE area, registers and scheduling.
Status FinishThread(Tracee& t, const pb::ThreadImage& thread, bool from_outside);
// Lets a process and its threads go; `stopped`: into a group stop, its
// threads let go only once the leader has stopped (else they would run).
Status DetachProcess(Tracee& leader, const std::vector<std::unique_ptr<Tracee>>& threads, bool stopped);

// A session leader with the job's terminal: its foreground process group
// back (TIOCSPGRP through `fd`, the terminal in the process), once every
// group of the tree exists. `best_effort`: a failure is not an error (a
// process rebuilt in place at home, on the user's own terminal).
Status RestoreForeground(Tracee& t, uint64_t scratch, const pb::ProcessImage& proc, int fd, bool best_effort);

}  // namespace roam
