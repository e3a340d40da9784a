"""Child processes of the test run, read from /proc (Linux): what a test started and what it left behind."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def socket_inodes(pid: int) -> set[str]:
    """The inodes of the sockets process ``pid`` holds open (Linux /proc); none when it is gone or not ours.

    A busy process opens and closes files while it is read: an fd closed since the listing is passed over,
    not taken for the whole process being gone."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return set()
    found = set()
    for fd in fds:
        with contextlib.suppress(OSError):
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            if link.startswith("socket:["):
                found.add(link[8:-1])
    return found


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (empty when it has gone)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return found


def descendants(pid: int | None = None) -> dict[int, str]:
    """Every live process under ``pid`` (this one by default), with its command line."""
    out: dict[int, str] = {}
    todo = children(os.getpid() if pid is None else pid)
    while todo:
        child = todo.pop()
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if alive(child):
            out[child] = cmdline.strip()
        todo.extend(children(child))
    return out


def alive(pid: int) -> bool:
    """Whether ``pid`` is still a running process (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def become_subreaper() -> bool:
    """Make this process adopt its descendants' orphans (Linux ``PR_SET_CHILD_SUBREAPER``), so a process a test
    started and whose parent died is still found by :func:`descendants`. False where that is not possible."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def reap() -> None:
    """Collect the exit status of any finished child (an adopted orphan becomes a zombie otherwise)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def leftovers() -> dict[int, str]:
    """Processes this one started (or adopted) that are still running, but multiprocessing's resource
    trackers (they leave once the processes that use them have)."""
    reap()
    return {pid: cmd for pid, cmd in descendants().items() if "resource_tracker" not in cmd}
