#!/usr/bin/python3
"""Prints the externally visible state of a process tree, normalised so that
two captures of the same tree compare equal with diff(1) when nothing that a
process could observe has changed.

usage: zdtm_capture.py ROOT_PID

For every process of the tree rooted at ROOT_PID (found through
/proc/PID/task/*/children), in pid order:
  - pid, ppid (not for the root: after a restore its parent is `roam
    restore`), pgid, sid, comm, exe, cwd, root;
  - selected /proc/PID/status fields; State with R/S/D folded into "S"
    (running and sleeping are indistinguishable to the process);
  - /proc/PID/maps: range, perms, offset, dev:inode, path, and smaps' VmFlags.
    dev:inode is masked for objects whose inode is recreated by a restore:
    anonymous shared memory ("/dev/zero (deleted)", "/SYSV...", memfd),
    POSIX shared memory (/dev/shm/NAME, placed again by a restore on
    another node) and deleted files. A /dev/shm object mapped under a name
    since removed but still there under another (a named semaphore) shows
    that other name. Adjacent VMAs that only the kernel's merging history
    tells apart (same perms, path, flags, contiguous offsets) are shown as
    one, since a process cannot observe the split. VmFlags listed in
    $ZDTM_IGNORE_VMFLAGS (default "ac sd": commit accounting and soft-dirty
    tracking, invisible to the process) are left out;
  - the fd table: number -> link target, with the inode numbers of pipes,
    sockets and anon inodes renumbered in order of first appearance (so that
    two fds sharing a pipe still show the same #N), pos and flags from fdinfo;
    pseudo-terminals (/dev/pts/N, and a master's pair from its fdinfo's
    tty-index) renumbered the same way, since a restore makes a new pair.
Exit status 1 if ROOT_PID does not exist.
"""
import os
import re
import sys

STATUS_KEYS = ["State", "Uid", "Gid", "Groups", "NoNewPrivs", "Seccomp",
               "SigBlk", "SigIgn", "SigCgt", "Umask", "TracerPid", "Threads",
               "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]
IGNORED_VMFLAGS = set(os.environ.get("ZDTM_IGNORE_VMFLAGS", "ac sd").split())
PTS = re.compile(r"^/dev/pts/(\d+)$")
INODE_OBJ = re.compile(r"^(pipe|socket|anon_inode|net|mnt|pid|user|uts|ipc|cgroup|time):\[?(\d+)\]?$")
VOLATILE_INODE_PATH = re.compile(r"^(/dev/zero \(deleted\)|/SYSV[0-9a-f]+|/memfd:.*|/dev/shm/.*|\[anon_shmem:.*\]|.* \(deleted\))$")


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def readlink(path):
    try:
        return os.readlink(path)
    except OSError:
        return None


def tree(root):
    """Pids of the tree rooted at root, root first, then in pid order."""
    seen = []
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid in seen or not os.path.exists(f"/proc/{pid}"):
            continue
        seen.append(pid)
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            tids = []
        for tid in tids:
            children = read(f"/proc/{pid}/task/{tid}/children") or ""
            todo.extend(int(c) for c in children.split())
    return [root] + sorted(p for p in seen if p != root)


class Renumber:
    """Replaces kernel object ids by #1, #2... in order of first appearance."""

    def __init__(self):
        self.ids = {}

    def __call__(self, kind, num):
        key = (kind, num)
        if key not in self.ids:
            self.ids[key] = len(self.ids) + 1
        return f"#{self.ids[key]}"


def stat_fields(pid):
    s = read(f"/proc/{pid}/stat")
    if s is None:
        return None
    comm = s[s.index("(") + 1:s.rindex(")")]
    rest = s[s.rindex(")") + 2:].split()
    # rest[0] is field 3 (state)
    return {"comm": comm, "ppid": rest[1], "pgid": rest[2], "sid": rest[3]}


def status_lines(pid):
    out = []
    text = read(f"/proc/{pid}/status") or ""
    fields = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        fields[k] = " ".join(v.split())
    zombie = fields.get("State", "").startswith("Z")
    for k in STATUS_KEYS:
        v = fields.get(k, "?")
        if zombie and k in ("SigBlk", "SigIgn", "SigCgt"):
            v = "(a zombie's: nothing can be delivered)"  # what it caught no longer matters
        if k == "State":
            v = v.split()[0] if v else "?"
            if v in ("R", "S", "D"):
                v = "S (running or sleeping)"
        out.append(f"  {k}: {v}")
    return out


def shm_name(path, ino):
    """A /dev/shm object mapped under a name since removed, itself still
    there under another (glibc's sem_open maps a semaphore under a temporary
    name): the name it has. roam's restore maps it by that name."""
    if not (path.startswith("/dev/shm/") and path.endswith(" (deleted)")):
        return path
    try:
        for e in os.scandir("/dev/shm"):
            if e.inode() == int(ino) and e.is_file(follow_symlinks=False):
                return "/dev/shm/" + e.name
    except OSError:
        pass
    return path


def maps_lines(pid):
    vmas = []  # [start, end, perms, off, dev, ino, path, flags]
    smaps = read(f"/proc/{pid}/smaps") or ""
    cur = None
    vma_re = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) ([0-9a-f]+) (\S+) (\d+)\s*(.*)$")
    for line in smaps.splitlines():
        m = vma_re.match(line)
        if m:
            start, end, perms, off, dev, ino, path = m.groups()
            path = shm_name(path, ino)
            if VOLATILE_INODE_PATH.match(path):
                dev, ino = "-", "-"
            cur = [int(start, 16), int(end, 16), perms, int(off, 16), dev, ino, path]
        elif line.startswith("VmFlags:") and cur is not None:
            flags = " ".join(f for f in line.split()[1:] if f not in IGNORED_VMFLAGS)
            vma = cur + [flags]
            prev = vmas[-1] if vmas else None
            if (prev and prev[1] == vma[0] and prev[2] == vma[2] and prev[4:] == vma[4:]
                    and not vma[6].startswith("[")
                    and (vma[3] == prev[3] + (prev[1] - prev[0]) or (ino == "0" and vma[3] == prev[3] == 0))):
                prev[1] = vma[1]
            else:
                vmas.append(vma)
            cur = None
    return [f"  {v[0]:x}-{v[1]:x} {v[2]} {v[3]:08x} {v[4]}:{v[5]} {v[6]} [{v[7]}]".replace("  [", " [")
            for v in vmas]


def fd_lines(pid, renumber):
    out = []
    try:
        fds = sorted(int(f) for f in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return ["  ? cannot list fds"]
    for fd in fds:
        target = readlink(f"/proc/{pid}/fd/{fd}") or "?"
        m = INODE_OBJ.match(target)
        if m and m.group(2):
            target = f"{m.group(1)}:[{renumber(m.group(1), m.group(2))}]"
        pts = PTS.match(target)
        if pts:
            target = f"/dev/pts/[{renumber('pts', pts.group(1))}]"
        info = read(f"/proc/{pid}/fdinfo/{fd}") or ""
        pos = flags = "?"
        for line in info.splitlines():
            if line.startswith("pos:"):
                pos = line.split()[1]
            elif line.startswith("flags:"):
                flags = line.split()[1]
            elif line.startswith("tty-index:"):
                target += f" (pair /dev/pts/[{renumber('pts', line.split()[1])}])"
        if flags != "?" and int(flags, 8) & 0o20000000:
            # O_TMPFILE (__O_TMPFILE | O_DIRECTORY) only says how the file
            # was made; a restore opens it again by path, without it
            # (docs/CHECKPOINT.md).
            flags = "0%o" % (int(flags, 8) & ~0o20200000)
        out.append(f"  fd {fd} -> {target} pos={pos} flags={flags}")
    return out


def capture(root):
    renumber = Renumber()
    lines = []
    for pid in tree(root):
        st = stat_fields(pid)
        if st is None:
            lines.append(f"== pid {pid}: vanished during capture")
            continue
        ppid = "-" if pid == root else st["ppid"]
        lines.append(f"== pid {pid} ppid {ppid} pgid {st['pgid']} sid {st['sid']} comm {st['comm']}")
        for name in ("exe", "cwd", "root"):
            lines.append(f"  {name}: {readlink(f'/proc/{pid}/{name}')}")
        lines.append(" status:")
        lines += status_lines(pid)
        lines.append(" maps:")
        lines += maps_lines(pid)
        lines.append(" fds:")
        lines += fd_lines(pid, renumber)
    return lines


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    root = int(sys.argv[1])
    if not os.path.exists(f"/proc/{root}"):
        print(f"pid {root} does not exist", file=sys.stderr)
        sys.exit(1)
    print("\n".join(capture(root)))


if __name__ == "__main__":
    main()
