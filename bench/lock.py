"""One run at a time: the OS lock a run holds on its folder while it writes, and the checks
that refuse a folder in use or one that holds a symbolic link.
"""

from __future__ import annotations

import errno
import fcntl
import os
import pathlib

from bench import store


class RunLock:
    """An exclusive OS lock on a run folder, held for as long as a run writes to it.

    ``fcntl.flock`` on ``run_dir/.lock``: the kernel drops it when the holding process ends,
    however it ends (``kill -9`` included), so a dead run never leaves a stale lock behind. A
    second run or resume of a locked folder is refused (:class:`store.RunFolderError`, naming the
    process that holds the lock) before it touches anything; so is a folder that holds a
    symbolic link (:func:`check_no_links`). (flock is advisory and, on a network file system
    that does not forward it, only holds between processes of one machine.)

    The file stays when the run ends. Removing it would break the lock: a second run that
    opened the file before it was unlinked would lock the unlinked file while a third created
    and locked a new one, and both would write. It holds the pid of the last run that locked
    it, for information only.
    """

    def __init__(self, run_dir: pathlib.Path):
        self.path = pathlib.Path(run_dir) / store.LOCK
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        fd = _open_lock(self.path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise store.RunFolderError(
                f"{self.path.parent} is in use by another process ({holder}): "
                "wait for it to finish, or stop it, before resuming"
            ) from None
        try:
            check_no_links(self.path.parent)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor releases the lock
            self._fd = None


def check_not_in_use(
    run_dir: pathlib.Path,
    then: str = "its report is rendered when that run finishes",
    *,
    writing: bool = True,
) -> None:
    """Refuse to render a run folder's report (``writing``; or only to read it, ``then`` says
    what waits) while a run holds its lock (its last row may be half written), or, to write,
    when it holds a symbolic link (the report would be written through it): a
    :class:`store.RunFolderError`. A folder without a lock file is not in use."""
    path = pathlib.Path(run_dir) / store.LOCK
    try:
        fd = _open_lock(path, os.O_RDONLY)
    except FileNotFoundError:
        fd = None
    if fd is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise store.RunFolderError(
                f"{run_dir} is being written (locked by {_holder(fd)}); {then}"
            ) from None
        finally:
            os.close(fd)
    if writing:
        check_no_links(run_dir)


def check_no_links(run_dir: pathlib.Path) -> None:
    """Refuse a run folder that holds a symbolic link: the suite writes only regular files of
    its own there, and a link would send its writes elsewhere."""
    links = sorted(p.name for p in pathlib.Path(run_dir).iterdir() if p.is_symlink())
    if links:
        raise store.RunFolderError(
            f"{run_dir}: {', '.join(links)} "
            + ("is a symbolic link" if len(links) == 1 else "are symbolic links")
            + ": bench writes only its own files in a run folder and follows no link there: "
            "remove the link (or copy the folder with `cp -rL`)"
        )


def _open_lock(path: pathlib.Path, flags: int) -> int:
    try:
        return store.open_no_follow(path, flags)
    except OSError as e:
        if e.errno != errno.ELOOP:
            raise
        check_no_links(path.parent)
        raise  # (not reached: the link is there)


def _holder(fd: int) -> str:
    """Who holds the flock on ``fd``'s file: the pid and command line that ``/proc/locks``
    names (Linux), else the pid the last bench run wrote into the file."""
    st = os.fstat(fd)
    inode = (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    try:
        lines = pathlib.Path("/proc/locks").read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        fields = line.split()  # "1: FLOCK  ADVISORY  WRITE 8405 fe:00:2146613 0 EOF"
        if len(fields) < 6 or fields[1] != "FLOCK":  # ("1: -> FLOCK ..." is a waiter)
            continue
        try:
            major, minor, number = fields[5].split(":")
            if (int(major, 16), int(minor, 16), int(number)) != inode:
                continue
        except ValueError:
            continue
        try:
            command = pathlib.Path(f"/proc/{fields[4]}/cmdline").read_bytes()
            command = command.replace(b"\0", b" ").decode(errors="replace").strip()[:100]
        except OSError:
            command = ""
        return f"pid {fields[4]}" + (f": {command}" if command else "")
    last = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
    return f"pid unknown; the last bench run to lock it was pid {last}"
