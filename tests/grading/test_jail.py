"""The jail and the kernel in it: what it can reach, the budgets, and the call protocol.

These start real bubblewrap jails (as root, with a leased uid; otherwise in a user
namespace), each in about a quarter of a second.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

from course_lib import nn
from course_lib.grading import jail
from course_lib.grading.jailed_process import (
    Died,
    JailedProcess,
    MemoryExceeded,
    OutputExceeded,
    TimedOut,
)
from course_lib.grading.sandbox_uids import leased_uid
from course_lib.grading.value_codec import decode, encode


@pytest.fixture
def kernel():
    outputs = []
    with leased_uid() as uid:
        proc = JailedProcess("course_lib.grading.kernel_runner",
                             jail.JailSpec(uid=uid if os.geteuid() == 0 else None),
                             memory_bytes=1024 * 2**20, max_output_bytes=200_000, nproc=32)
        proc.sink = outputs.append
        proc.start()
        proc.outputs = outputs
        yield proc
        proc.stop()


def ask(proc, message, seconds=30):
    proc.send({**message, "id": "t"})
    return proc.receive(time.monotonic() + seconds)


def run(proc, code, seconds=30):
    proc.outputs.clear()
    reply = ask(proc, {"op": "run", "code": code}, seconds)
    text = "".join(o.get("text", "") for o in proc.outputs if o["output_type"] == "stream")
    return reply, text


def test_the_jail_shows_nothing_of_the_grader(kernel, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("hidden")
    code = f"""
import os, socket
for path in [{str(REPO / 'solutions')!r}, {str(REPO / '.git')!r}, {str(secret)!r},
             '/root/.bashrc', '/etc/shadow', '/etc/passwd', {str(Path.home())!r} + '/.bashrc']:
    print(path, os.path.exists(path))
for path in ['/usr/x', {str(REPO / 'course_lib' / 'x.py')!r}, '/home/student/ok', '/tmp/ok']:
    try:
        open(path, 'w').write('x'); print(path, 'written')
    except OSError as e:
        print(path, 'refused')
try:
    socket.create_connection(('1.1.1.1', 80), timeout=2); print('network yes')
except OSError:
    print('network no')
print('uid', os.getuid(), 'pids', sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))
"""
    reply, text = run(kernel, code)
    assert reply["ok"], text
    lines = dict(line.rsplit(" ", 1) for line in text.splitlines() if " " in line and
                 not line.startswith(("uid", "pids")))
    assert {k: v for k, v in lines.items() if v == "True"} == {}, text
    assert lines["/home/student/ok"] == "written" and lines["/tmp/ok"] == "written"
    assert lines["/usr/x"] == "refused"
    assert lines[str(REPO / "course_lib" / "x.py")] == "refused"
    assert "network no" in text
    uid_line = next(line for line in text.splitlines() if line.startswith("uid"))
    assert uid_line.split()[1] != "0"  # never root, even when the grader is
    assert "pids [1, 2" in uid_line  # its own pid namespace: the grader's processes are not there


def test_every_process_dies_with_the_jail(kernel):
    reply, text = run(kernel, "import subprocess, os\n"
                              "p = subprocess.Popen(['sleep', '300'], start_new_session=True)\n"
                              "print(os.getpid(), p.pid)")
    assert reply["ok"], text
    # Popen returns as soon as exec has begun; the new program's command line is set a little
    # later, and on a loaded machine the gap is long enough to read an empty one. So wait.
    deadline = time.monotonic() + 10
    while True:
        tree = kernel._tree()
        sleepers = [p for p in tree if _cmdline(p).startswith("sleep\x00300")]
        if sleepers or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert sleepers, (f"no sleep among the jail's processes {tree} "
                      f"({[_cmdline(p) for p in tree]}); jail alive: {kernel.alive()}")
    kernel.stop()
    time.sleep(0.5)
    assert not [p for p in sleepers if Path(f"/proc/{p}").exists()
                and not _is_zombie(p)]


def test_stopping_an_ended_jail_signals_no_reused_pid(kernel):
    """Once the jail's first process has ended its pid is free and may soon name another
    process (pid_max is often 32768). Stopping must not kill that process."""
    init = kernel._init_pid
    os.kill(init, signal.SIGKILL)
    kernel.proc.wait(timeout=10)
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        kernel._init_pid = bystander.pid  # as if the freed pid had been handed to it
        kernel.stop()
        time.sleep(0.2)
        assert bystander.poll() is None, "stop() killed a process outside the jail"
    finally:
        bystander.kill()
        bystander.wait()


def _cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return ""


def _is_zombie(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def test_output_is_stopped_while_it_streams(kernel):
    start = time.monotonic()
    with pytest.raises(OutputExceeded):
        run(kernel, "while True:\n    print('x' * 1000)")
    assert time.monotonic() - start < 10
    assert not kernel.alive()


def test_memory_of_the_whole_jail_is_limited(kernel):
    # Five children of 300 MB each: within the address-space limit of every process, but
    # together beyond the jail's budget of 1 GiB.
    code = ("import os, time\nfor _ in range(5):\n    if os.fork() == 0:\n"
            "        b = bytearray(300 * 2**20)\n        time.sleep(60)\n        os._exit(0)\n"
            "time.sleep(60)")
    with pytest.raises(MemoryExceeded):
        run(kernel, code, seconds=50)


def test_processes_are_capped(kernel):
    reply, text = run(kernel, "import os, time\nn = 0\ntry:\n    for _ in range(200):\n"
                              "        if os.fork() == 0:\n            time.sleep(30)\n"
                              "            os._exit(0)\n        n += 1\nexcept OSError:\n"
                              "    pass\nprint('forked', n)")
    assert reply["ok"], text
    assert int(text.split()[-1]) < 32


def test_a_cell_past_its_time_is_interrupted(kernel):
    kernel.send({"op": "run", "id": "t", "code": "import time\ntime.sleep(60)"})
    with pytest.raises(TimedOut):
        kernel.receive(time.monotonic() + 1)
    kernel.interrupt()
    reply = kernel.receive(time.monotonic() + 5)
    assert reply["ok"] is False
    assert any(o.get("ename") == "KeyboardInterrupt" for o in kernel.outputs)
    assert run(kernel, "print(1 + 1)")[1] == "2\n"  # and the kernel goes on


def test_a_dead_kernel_is_reported(kernel):
    with pytest.raises(Died):
        run(kernel, "import os\nos._exit(1)")


def test_calls_cross_as_data_with_callbacks_and_changes(kernel):
    reply, text = run(kernel, "def step(model, lr, loss_of):\n"
                              "    for layer in model.layers:\n"
                              "        for k in layer.params:\n"
                              "            layer.params[k] -= lr\n"
                              "    return loss_of(model.layers[0].params['W'])\n")
    assert reply["ok"], text
    handle = ask(kernel, {"op": "get", "name": "step"})["value"]
    assert handle["$"] == "handle" and handle["callable"] and handle["name"] == "step"
    assert ask(kernel, {"op": "get", "name": "nothing"}) == {"op": "reply", "id": "t",
                                                             "missing": True}
    model = nn.Sequential(nn.Dense(2, 2, np.random.default_rng(0)))
    w = model.layers[0].params["W"].copy()
    kernel.send({"op": "call", "id": "c", "target": {"handle": handle["id"]},
                 "args": [encode(model), encode(0.5), {"$": "callback", "id": 1, "name": "f"}],
                 "kwargs": {}})
    callback = kernel.receive(time.monotonic() + 10)
    assert callback["op"] == "callback" and callback["callback"] == 1
    np.testing.assert_allclose(decode(callback["args"][0]), w - 0.5)
    kernel.send({"op": "reply", "id": callback["id"], "returned": encode(42.0)})
    reply = kernel.receive(time.monotonic() + 10)
    assert decode(reply["returned"]) == 42.0
    changed = decode(reply["changed"]["0"])
    np.testing.assert_allclose(changed.layers[0].params["W"], w - 0.5)


def test_an_error_crosses_with_its_name_and_the_students_traceback(kernel):
    run(kernel, "def f(x):\n    raise NotImplementedError()")
    handle = ask(kernel, {"op": "get", "name": "f"})["value"]
    reply = ask(kernel, {"op": "call", "target": {"handle": handle["id"]}, "args": [1],
                         "kwargs": {}})
    raised = reply["raised"]
    assert raised["type"] == "NotImplementedError" and raised["culprit"] == "f"
    assert "raise NotImplementedError()" in raised["traceback"]
    assert "kernel_runner" not in raised["traceback"]  # the grader's own frames are left out


def test_an_installation_under_tmp_is_reachable_inside_the_jail():
    """A course checked out (or a virtualenv made) under /tmp, as a CI clone may be: the jail's
    /tmp is private, yet the read-only folders beneath it are made, readable, inside it."""
    top = Path(tempfile.mkdtemp(prefix="course-under-tmp-"))
    top.chmod(0o755)
    deep = top / "clone" / "pkg"
    deep.mkdir(parents=True)
    (deep / "marker_module.py").write_text("VALUE = 42\n")
    with leased_uid() as uid:
        spec = jail.JailSpec(uid=uid if os.geteuid() == 0 else None, read_only=[deep])
        done = subprocess.run(jail.command(
            [sys.executable, "-c",
             f"import sys; sys.path.insert(0, {str(deep)!r}); import marker_module; "
             "print(marker_module.VALUE)"], spec), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "42", done.stderr[-1000:]
