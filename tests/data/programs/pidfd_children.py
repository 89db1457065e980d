"""Runs N children one after another and waits for each through a pidfd,
as asyncio's PidfdChildWatcher does (Go's os/exec holds one per child too):
the pidfd sits in the event loop's epoll set until the child ends. Prints
"I child I rc R" per child (R = I % 7, its exit status), then "done N".

usage: pidfd_children.py N
"""
import asyncio
import sys


async def main(n):
    for i in range(n):
        p = await asyncio.create_subprocess_exec(
            "sh", "-c", "sleep 0.1; echo child %d; exit %d" % (i, i % 7), stdout=asyncio.subprocess.PIPE)
        out, _ = await p.communicate()
        print(i, out.decode().strip(), "rc", p.returncode, flush=True)
    print("done", n, flush=True)


if hasattr(asyncio, "PidfdChildWatcher") and hasattr(asyncio, "set_child_watcher"):
    asyncio.set_child_watcher(asyncio.PidfdChildWatcher())  # Python >= 3.14 watches through pidfds itself
asyncio.run(main(int(sys.argv[1])))
