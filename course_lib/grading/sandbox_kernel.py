"""Start an IPython kernel for one submission, with limits and, under root, as nobody.

nbgrader starts this instead of the plain ``python3`` kernel when sandboxing is on (see
:func:`install_kernelspec`). Before handing over to ipykernel it:

1. (root only) runs in its own mount namespace (``unshare --mount``, given in the kernel
   spec) and hides the paths listed in ``COURSE_SANDBOX_HIDE`` (the solutions with their
   hidden tests, the submissions folder, the output folder) under empty tmpfs mounts, and
   ``/root`` too, keeping only the Python installation the kernel needs;
2. sets resource limits: address space (``COURSE_SANDBOX_MEMORY_MB``), size of any file
   written (``COURSE_SANDBOX_FSIZE_MB``), number of processes (a fork bomb stops there), CPU
   seconds, no core dumps;
3. (root only) becomes an unprivileged user of its own: ``COURSE_SANDBOX_UID`` (one uid per
   submission, in a range no account uses, group ``nogroup``), so one submission's processes
   and files can never count against, or be reached by, another's;
4. works in a private folder (``COURSE_SANDBOX_DIR``): HOME, IPython's profile, matplotlib's
   and Keras' caches and TMPDIR all live there, so a startup file planted by one submission
   can never run in another's kernel, and nothing outlives the run.

The environment is rebuilt from a short allow-list, so credentials in the grader's
environment do not reach student code.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

from .sandbox_uids import SANDBOX_UID_BASE

SANDBOX_GID = 65534  # nogroup
KEEP_ENV = ("PATH", "LANG", "LC_ALL", "KERAS_BACKEND", "COURSE_PROFILE", "MPLBACKEND",
            "COURSE_STATIC_WIDGETS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
            "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_CPP_MIN_LOG_LEVEL",
            "COURSE_RECORD_DIR")


def install_kernelspec(jupyter_dir: Path) -> str:
    """Write the ``course-sandbox`` kernel spec under ``jupyter_dir/kernels``; return its name.

    Add ``jupyter_dir`` to ``JUPYTER_PATH`` so jupyter_client finds it.
    """
    argv = [sys.executable, "-m", "course_lib.grading.sandbox_kernel", "-f", "{connection_file}"]
    if os.geteuid() == 0 and shutil.which("unshare"):
        argv = ["unshare", "--mount", "--propagation", "private", *argv]
    spec_dir = Path(jupyter_dir) / "kernels" / "course-sandbox"
    spec_dir.mkdir(parents=True, exist_ok=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": argv, "display_name": "Python 3 (course sandbox)", "language": "python",
    }))
    return "course-sandbox"


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


def _hide(paths: list[str], keep: list[str]) -> None:
    """Cover each path with an empty tmpfs; re-expose the ``keep`` paths found inside them."""
    for hidden in paths:
        if not hidden or not os.path.isdir(hidden):
            continue
        inner = [k for k in keep if k.startswith(hidden.rstrip("/") + "/")]
        parked = []
        for i, path in enumerate(inner):
            spot = f"/tmp/.course-keep-{os.getpid()}-{i}"
            os.makedirs(spot, exist_ok=True)
            _mount("--bind", path, spot)
            parked.append((spot, path))
        _mount("-t", "tmpfs", "-o", "mode=755,size=1m", "tmpfs", hidden)
        for spot, path in parked:
            os.makedirs(path, exist_ok=True)
            _mount("--move", spot, path)
            os.rmdir(spot)


def _limit(kind: int, value: int) -> None:
    soft, hard = resource.getrlimit(kind)
    cap = value if hard == resource.RLIM_INFINITY else min(value, hard)
    resource.setrlimit(kind, (cap, cap))


def main(argv: list[str]) -> None:
    connection = argv[argv.index("-f") + 1]
    box = Path(os.environ["COURSE_SANDBOX_DIR"])
    memory_mb = int(os.environ.get("COURSE_SANDBOX_MEMORY_MB", "4096"))
    fsize_mb = int(os.environ.get("COURSE_SANDBOX_FSIZE_MB", "64"))
    nproc = int(os.environ.get("COURSE_SANDBOX_NPROC", "256"))
    cpu_s = int(os.environ.get("COURSE_SANDBOX_CPU_S", "600"))
    hide = [p for p in os.environ.get("COURSE_SANDBOX_HIDE", "").split(os.pathsep) if p]
    as_root = os.geteuid() == 0

    for sub in (".ipython", ".cache", ".keras", ".config/matplotlib", "tmp"):
        (box / sub).mkdir(parents=True, exist_ok=True)
    # matplotlib would rebuild its font list in every fresh MPLCONFIGDIR (a quarter of a CPU
    # second per kernel); the grader builds it once and each box gets a copy.
    fonts = os.environ.get("COURSE_SANDBOX_MPL_FONTS")
    for font_list in Path(fonts).glob("fontlist-*.json") if fonts else ():
        shutil.copy(font_list, box / ".config/matplotlib")
    own_connection = box / "connection.json"
    shutil.copyfile(connection, own_connection)

    env = {k: os.environ[k] for k in KEEP_ENV if k in os.environ}
    env.update(HOME=str(box), IPYTHONDIR=str(box / ".ipython"), TMPDIR=str(box / "tmp"),
               MPLCONFIGDIR=str(box / ".config/matplotlib"), KERAS_HOME=str(box / ".keras"),
               XDG_CACHE_HOME=str(box / ".cache"), PYTHONNOUSERSITE="1",
               PYTHONDONTWRITEBYTECODE="1")

    uid = int(os.environ.get("COURSE_SANDBOX_UID", SANDBOX_UID_BASE))
    if as_root:
        # The interpreter and the packages must stay visible; everything else listed goes.
        keep = sorted({sys.base_prefix, sys.prefix, str(Path(__file__).resolve().parents[2])})
        # /root first: re-exposing a kept folder binds it without the mounts inside it.
        _hide(["/root", *hide], keep)
        for path in [box, *box.rglob("*")]:
            os.chown(path, uid, SANDBOX_GID)
        os.chmod(box, 0o700)

    _limit(resource.RLIMIT_AS, memory_mb * 2**20)
    _limit(resource.RLIMIT_FSIZE, fsize_mb * 2**20)
    _limit(resource.RLIMIT_NPROC, nproc)
    _limit(resource.RLIMIT_CPU, cpu_s)
    _limit(resource.RLIMIT_CORE, 0)

    if as_root:
        os.setgroups([])
        os.setgid(SANDBOX_GID)
        os.setuid(uid)
    os.chdir(box)
    # ipykernel prints its connection banner on the process's own stdout; keep that (and any
    # crash report) in the box instead of the grader's terminal. Cell output is unaffected.
    log = os.open(box / "kernel.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.execve(sys.executable, [
        sys.executable, "-m", "ipykernel_launcher", "-f", str(own_connection),
        "--HistoryManager.hist_file=:memory:", "--IPKernelApp.log_level=ERROR",
    ], env)


if __name__ == "__main__":
    main(sys.argv[1:])
