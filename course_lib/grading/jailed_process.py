"""The grader's side of a jailed process: start it, talk to it, and hold it to its budgets.

A :class:`JailedProcess` is a Python program (:mod:`.kernel_runner` or :mod:`.test_runner`)
running in a jail (:mod:`.jail`), connected by pipes the grader made: requests go in on
one, messages come back on another, and whatever the process writes to its own stdout and
stderr (a C library, a subprocess) arrives on two more. Every read has a deadline, and
while the grader waits it enforces, for the jail as a whole:

- output: every byte the process sends back is counted; past ``max_output_bytes`` for the
  current request the jail is stopped (:class:`OutputExceeded`), so a cell that prints
  without end costs memory nowhere;
- memory: the resident memory of every process in the jail, summed, checked every 0.1 s;
  past ``memory_bytes`` the jail is stopped (:class:`MemoryExceeded`). Each process also
  has an address-space limit, and the number of processes is capped (``RLIMIT_NPROC``,
  which counts the jail alone: its own uid under root, its own user namespace otherwise);
- time: each request has a deadline; the caller decides whether to interrupt or stop.

Stopping the jail kills its first process; the kernel then kills every process left in the
jail's pid namespace, whatever it did to hide.
"""

from __future__ import annotations

import json
import os
import select
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from . import jail
from .channel import dumps

MAX_MESSAGE_BYTES = 32 * 2**20
POLL_S = 0.1


class JailError(Exception):
    """The jailed process can no longer be used; ``reason`` says why, for a person."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Died(JailError):
    pass


class TimedOut(JailError):
    pass


class OutputExceeded(JailError):
    pass


class MemoryExceeded(JailError):
    pass


class ProtocolBroken(JailError):
    pass


class JailedProcess:
    """One process in one jail. ``module``: the course_lib module to run with ``-m``."""

    def __init__(self, module: str, spec: jail.JailSpec, *, memory_bytes: int,
                 max_output_bytes: int, nproc: int = 64, unsafe_no_jail: bool = False):
        self.module, self.spec = module, spec
        self.memory_bytes, self.max_output_bytes = memory_bytes, max_output_bytes
        self.nproc, self.unsafe = nproc, unsafe_no_jail
        self.proc: subprocess.Popen | None = None
        self.sink: Callable[[dict], None] | None = None  # told about every output
        self.output_bytes = 0  # bytes sent back since the counter was last reset

    # -- life ---------------------------------------------------------------------------------
    def start(self) -> None:
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        info_r, info_w = os.pipe()
        inside = [sys.executable, "-m", self.module, str(to_child_r), str(from_child_w)]
        limits = {"COURSE_JAIL_AS_MB": str(max(self.memory_bytes // 2**20, 256)),
                  "COURSE_JAIL_FSIZE_MB": str(self.spec.home_mb),
                  "COURSE_JAIL_NPROC": str(self.nproc)}
        self.spec.env.update(limits)
        args_r, args_w = os.pipe()
        if self.unsafe:
            argv, env = inside, {**os.environ, **self.spec.env}
            env.pop("COURSE_JAIL_NPROC")  # it would count every process of the grader's uid
        else:
            full = jail.command(inside, self.spec)
            # The options go through a pipe, not the command line: inside the jail the first
            # process's command line is readable, and it would show the grader's paths.
            split = full.index("--")
            argv = [full[0], "--args", str(args_r), *full[split:]]
            options = b"".join(a.encode() + b"\0"
                               for a in ["--info-fd", str(info_w), *full[1:split]])
            if len(options) > 60_000:
                raise jail.JailUnavailable("the jail's options are too long for a pipe")
            os.write(args_w, options)
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        os.close(args_w)
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            pass_fds=(to_child_r, from_child_w, info_w, args_r), env=env, start_new_session=True)
        for fd in (to_child_r, from_child_w, info_w, args_r):
            os.close(fd)
        self._init_pid = self.proc.pid
        # Kept open while the jail lives: bubblewrap may write more to it, and a closed pipe
        # would kill it with SIGPIPE.
        self._info = info_r
        self._init_fd = None
        if not self.unsafe:
            self._init_pid = _read_child_pid(info_r, self.proc) or self.proc.pid
            self._init_fd = _pidfd_of_child(self._init_pid, self.proc)
        self._buffers = {self._from_child: b"", self.proc.stdout.fileno(): b"",
                         self.proc.stderr.fileno(): b""}
        self._open = set(self._buffers)
        for fd in self._buffers:
            os.set_blocking(fd, False)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """Kill the jail and everything in it; safe to call twice."""
        if self.proc is None:
            return
        # Signals go through a pidfd and through Popen, never to a bare pid: once a process
        # has ended its pid is free, and on a busy machine (pid_max is often 32768, and every
        # thread takes one) it soon names someone else's process, even another jail's.
        if self._init_fd is not None:
            try:
                signal.pidfd_send_signal(self._init_fd, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            os.close(self._init_fd)
            self._init_fd = None
        try:
            self.proc.kill()  # does nothing once the process has been waited for
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for fd in (self._to_child, self._from_child, self._info):
            try:
                os.close(fd)
            except OSError:
                pass
        for pipe in (self.proc.stdout, self.proc.stderr):
            pipe.close()
        self.proc = None

    def interrupt(self) -> None:
        """Send SIGINT to the jail's main program (a KeyboardInterrupt in the student's code)."""
        # Jailed, the program is the first child of the jail's first process (bubblewrap's
        # init); without a jail it is the process itself.
        main = [self.proc.pid] if self.unsafe else self._tree()[1:2]
        for pid in main:
            try:
                os.kill(pid, signal.SIGINT)
            except (ProcessLookupError, PermissionError):
                pass

    # -- messages -------------------------------------------------------------------------------
    def send(self, message: dict) -> None:
        data = dumps(message)
        try:
            while data:
                data = data[os.write(self._to_child, data):]
        except (BrokenPipeError, OSError):
            raise self._death() from None

    def receive(self, deadline: float) -> dict:
        """The next message that is not an output (outputs go to ``sink``), by ``deadline``
        (a time.monotonic() value). Raises a :class:`JailError` instead."""
        sel = selectors.DefaultSelector()
        for fd in self._open:
            sel.register(fd, selectors.EVENT_READ)
        try:
            while True:
                message = self._next_message()
                if message is not None:
                    if message.get("op") == "out":
                        self._output(message.get("output"))
                        continue
                    return message
                # The jail's program has ended when its pipe closes, or when bubblewrap
                # exits (left-over processes in the jail may still hold the pipe open).
                if self._from_child not in self._open or self.proc.poll() is not None:
                    self._drain(sel)
                    message = self._next_message()
                    if message is not None and message.get("op") != "out":
                        return message
                    raise self._death()
                now = time.monotonic()
                if now >= deadline:
                    raise TimedOut("time limit reached")
                self._check_memory()
                for key, _ in sel.select(timeout=min(POLL_S, deadline - now)):
                    self._read(key.fd, sel)
        finally:
            sel.close()

    def _read(self, fd: int, sel) -> None:
        try:
            chunk = os.read(fd, 1 << 20)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._open.discard(fd)
            sel.unregister(fd)
            if fd != self._from_child and self._buffers[fd]:
                self._raw(fd, self._buffers[fd])
                self._buffers[fd] = b""
            return
        if fd == self._from_child:
            self._buffers[fd] += chunk
            if len(self._buffers[fd]) > MAX_MESSAGE_BYTES:
                self.stop()
                raise ProtocolBroken("the process sent a message larger than "
                                     f"{MAX_MESSAGE_BYTES // 2**20} MiB")
        else:
            self._raw(fd, chunk)

    def _drain(self, sel) -> None:
        """Read what is already in the pipes, without waiting."""
        for fd in list(self._open):
            for _ in range(64):
                if fd not in self._open:
                    break
                before = len(self._buffers[fd])
                self._read(fd, sel)
                if fd in self._open and len(self._buffers[fd]) == before and fd == self._from_child:
                    break
                if fd != self._from_child:
                    break

    def _next_message(self) -> dict | None:
        buffer = self._buffers.get(self._from_child, b"")
        line, newline, rest = buffer.partition(b"\n")
        if not newline:
            return None
        self._buffers[self._from_child] = rest
        try:
            message = json.loads(line)
        except (ValueError, RecursionError):
            message = None
        if not isinstance(message, dict):
            self.stop()
            raise ProtocolBroken("the process sent something that is not a message")
        if message.get("op") == "out":
            self._count(len(line))
        return message

    def _raw(self, fd: int, data: bytes) -> None:
        self._count(len(data))
        name = "stdout" if fd == self.proc.stdout.fileno() else "stderr"
        self._output({"output_type": "stream", "name": name,
                      "text": data.decode("utf-8", errors="replace")})

    def _output(self, output) -> None:
        if isinstance(output, dict) and self.sink is not None:
            self.sink(output)

    def _count(self, n: int) -> None:
        self.output_bytes += n
        if self.output_bytes > self.max_output_bytes:
            self.stop()
            raise OutputExceeded(f"it printed more than {self.max_output_bytes // 1024} kB")

    def _death(self) -> Died:
        code = self.proc.poll() if self.proc else None
        self.stop()
        if code is not None and code < 0:
            return Died(f"the process was killed by signal {-code}")
        return Died("the process stopped (os._exit, a crash, or a process or file-size limit)")

    # -- memory ---------------------------------------------------------------------------------
    def _tree(self) -> list[int]:
        """Pids of every process in the jail, the jail's first process first."""
        if self._init_fd is not None and select.select([self._init_fd], [], [], 0)[0]:
            return []  # a pidfd reads ready once its process has ended: the pid is stale
        found, queue = [], [self._init_pid]
        while queue:
            pid = queue.pop(0)
            found.append(pid)
            try:
                for task in os.listdir(f"/proc/{pid}/task"):
                    text = Path(f"/proc/{pid}/task/{task}/children").read_text()
                    queue += [int(c) for c in text.split()]
            except OSError:
                continue
        return found

    def resident_bytes(self) -> int:
        total = 0
        for pid in self._tree():
            try:
                pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
            except (OSError, IndexError, ValueError):
                continue
            total += pages * os.sysconf("SC_PAGE_SIZE")
        return total

    def _check_memory(self) -> None:
        used = self.resident_bytes()
        if used > self.memory_bytes:
            self.stop()
            raise MemoryExceeded(f"its processes used more than {self.memory_bytes // 2**20} MiB "
                                 "of memory together")


def _pidfd_of_child(pid: int, parent: subprocess.Popen) -> int | None:
    """A pidfd for ``pid``, if it is still the child of ``parent`` (bubblewrap): the parent,
    not yet waited for, keeps its own pid, so a child whose parent matches is the jail's
    first process and not a later process that reused a freed pid. None where the kernel
    has no pidfds (before Linux 5.3) or the process has already ended."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        ppid = None
    if ppid != parent.pid or parent.poll() is not None:
        os.close(fd)
        return None
    return fd


def _read_child_pid(fd: int, proc: subprocess.Popen) -> int | None:
    """bubblewrap's --info-fd report: the pid, outside, of the jail's first process."""
    data = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        sel = selectors.DefaultSelector()
        sel.register(fd, selectors.EVENT_READ)
        ready = sel.select(timeout=0.1)
        sel.close()
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            data += chunk
            if b"child-pid" in data and b"," in data.split(b"child-pid", 1)[1] or b"}" in data:
                break
    try:
        return int(data.split(b'"child-pid":', 1)[1].split(b",")[0].split(b"}")[0])
    except (IndexError, ValueError):
        return None
