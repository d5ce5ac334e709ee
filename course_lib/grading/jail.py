"""The bubblewrap jail that every process touching a submission runs in, root or not.

`bubblewrap <https://github.com/containers/bubblewrap>`_ (Debian package ``bubblewrap``)
builds the jail from nothing: a new mount namespace whose root holds only what is listed
here, plus new pid, network, IPC and UTS namespaces. Inside:

- read-only: the system's ``/usr`` (and the ``/bin``, ``/lib`` links into it), a few files
  of ``/etc`` that programs need to start, the Python installation and virtual environment,
  and the ``course_lib`` package itself (not the repository around it);
- private and size-limited, gone when the jail ends: ``/tmp``, ``/var/tmp``, ``/dev/shm``
  and the home folder, which is also the working folder;
- not there at all: the repository (solutions, hidden tests, ``.git``), the grader's working
  folders, other submissions, the instructor's home, the network, and every process outside
  (the jail's first process is pid 1 of its own pid namespace, and when it ends the kernel
  kills every process left inside).

Run as root, bubblewrap needs no user namespace; the command then drops to an unprivileged
uid of its own (leased per jail, see :mod:`.sandbox_uids`) with no capabilities and
``no_new_privs`` before anything of the student's runs. Run as a normal user, bubblewrap
makes a user namespace and the process keeps the user's uid, with no capabilities; nested
user namespaces are disabled. In both cases nothing runs with more rights than the student.

Nothing here writes to a path the student can reach: the grader talks to the jail through
pipes it created, never through files.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

HOME = "/home/student"
NOBODY_GID = 65534
# Files under /etc that the interpreter and its libraries read at start; nothing else of
# /etc (credentials, host configuration) is visible.
ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "fonts", "localtime",
       "mime.types", "nsswitch.conf", "host.conf", "gai.conf")
# Environment passed through from the grader; everything else is cleared.
PASS_ENV = ("KERAS_BACKEND", "COURSE_PROFILE", "MPLBACKEND", "COURSE_STATIC_WIDGETS",
            "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
            "TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS", "CUDA_VISIBLE_DEVICES", "LANG")

INSTALL_HINT = ("Grading runs every submission inside a bubblewrap jail. Install it "
                "(Debian/Ubuntu: `sudo apt-get install bubblewrap`; Fedora: `sudo dnf install "
                "bubblewrap`) and grade again. To grade anyway, without isolation, pass "
                "--unsafe-no-sandbox: the students' code then runs with your rights.")


class JailUnavailable(RuntimeError):
    """bubblewrap is missing or cannot build a jail on this machine."""


@dataclass
class JailSpec:
    """What one jail gets. Sizes in MiB."""

    uid: int | None = None  # as root: the unprivileged uid to run as
    home_mb: int = 512
    tmp_mb: int = 256
    shm_mb: int = 64
    read_only: list[Path] = field(default_factory=list)  # extra folders to show read-only
    files: dict[str, Path] = field(default_factory=dict)  # path inside -> file outside (ro)
    env: dict[str, str] = field(default_factory=dict)


def bwrap() -> str:
    """The bubblewrap executable; raises :class:`JailUnavailable` with what to do."""
    exe = shutil.which("bwrap")
    if exe is None:
        raise JailUnavailable("bubblewrap (bwrap) is not installed. " + INSTALL_HINT)
    return exe


def python_roots() -> list[Path]:
    """The folders the interpreter and the course's packages live in (read-only inside)."""
    import course_lib

    roots = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(),
             Path(course_lib.__file__).resolve().parent}
    # A virtual environment's python is a link into the base installation.
    roots.add(Path(os.path.realpath(sys.executable)).parent.parent)
    # Package folders added by .pth files; never the current folder or a source tree that
    # happens to be on the path (a repository's tests/).
    roots |= {Path(p).resolve() for p in sys.path
              if p and Path(p).is_dir() and Path(p).name in ("site-packages", "dist-packages")}
    return sorted(_outermost(roots))


def _outermost(paths: set[Path]) -> set[Path]:
    return {p for p in paths if not any(q != p and q in p.parents for q in paths)}


def _read_only_mounts(folders: list[Path], files: dict[str, Path]) -> list[str]:
    """Bind the system, ``folders`` and ``files`` read-only, each at its own path (files at
    the path given). The folders above each one are made first, readable by everyone:
    bubblewrap would make them private to root."""
    links, binds = [], [("/usr", "/usr")]
    for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / top
        if path.is_symlink():
            links += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            binds.append((str(path), str(path)))
    binds += [(f"/etc/{name}", f"/etc/{name}") for name in ETC if (Path("/etc") / name).exists()]
    binds += [(str(f), str(f)) for f in folders if not str(f).startswith("/usr/")]
    binds += [(str(outside), inside) for inside, outside in files.items()]
    # The private folders themselves exist already, with their own permissions; folders
    # inside them (an installation under /tmp) are made like any other.
    private = ("/", "/tmp", "/var/tmp", "/dev", "/dev/shm", HOME)
    parents = sorted({str(parent) for _, dest in binds for parent in Path(dest).parents
                      if str(parent) not in private}, key=lambda p: (p.count("/"), p))
    args = []
    for parent in parents:
        args += ["--perms", "0755", "--dir", parent]
    for src, dest in binds:
        args += ["--ro-bind", src, dest]
    return links + args


def command(argv: list[str], spec: JailSpec) -> list[str]:
    """The command line that runs ``argv`` inside a jail described by ``spec``."""
    as_root = os.geteuid() == 0
    args = [bwrap(), "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-net",
            "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "jail"]
    if not as_root:
        args += ["--unshare-user", "--disable-userns"]
    args += ["--proc", "/proc", "--dev", "/dev"]
    for path, size in (("/tmp", spec.tmp_mb), ("/var/tmp", spec.tmp_mb), ("/dev/shm", spec.shm_mb),
                       (HOME, spec.home_mb)):
        args += ["--perms", "1777", "--size", str(size * 2**20), "--tmpfs", path]
    # matplotlib's configuration folder must be writable; its font list is prepared once.
    args += ["--perms", "1777", "--dir", f"{HOME}/.config", "--perms", "1777",
             "--dir", f"{HOME}/.config/matplotlib"]
    # After the private folders, so that an installation under /tmp is still visible.
    args += _read_only_mounts([*python_roots(), *spec.read_only], spec.files)
    env = {"HOME": HOME, "USER": "student", "LOGNAME": "student", "PATH": "/usr/bin:/bin",
           "TMPDIR": "/tmp", "LANG": "C.UTF-8", "MPLCONFIGDIR": f"{HOME}/.config/matplotlib",
           "IPYTHONDIR": f"{HOME}/.ipython", "KERAS_HOME": f"{HOME}/.keras",
           "XDG_CACHE_HOME": f"{HOME}/.cache", "PYTHONNOUSERSITE": "1",
           "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}
    env.update({k: os.environ[k] for k in PASS_ENV if k in os.environ})
    env.update(spec.env)
    args += ["--clearenv", "--chdir", HOME]
    for key, value in sorted(env.items()):
        args += ["--setenv", key, value]
    args.append("--")
    if as_root:
        if spec.uid is None:
            raise ValueError("as root, a jail needs an unprivileged uid to run as")
        args += ["/usr/bin/setpriv", f"--reuid={spec.uid}", f"--regid={NOBODY_GID}",
                 "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]
    return args + list(argv)


def check_available() -> None:
    """Build a tiny jail and run ``true`` in it; raise :class:`JailUnavailable` if that fails
    (bubblewrap missing, or user namespaces disabled for normal users)."""
    import subprocess

    from .sandbox_uids import SANDBOX_UID_BASE

    spec = JailSpec(uid=SANDBOX_UID_BASE if os.geteuid() == 0 else None)
    try:
        done = subprocess.run(command([sys.executable, "-c", "pass"], spec),
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        raise JailUnavailable(f"bubblewrap could not start ({exc}). " + INSTALL_HINT) from None
    if done.returncode != 0:
        raise JailUnavailable(
            f"bubblewrap is installed but could not build a jail here: "
            f"{done.stderr.strip()[-300:] or done.returncode}. Where user namespaces are "
            "disabled for normal users (sysctl kernel.unprivileged_userns_clone=0, or an "
            "AppArmor rule), grade as root or allow them. " + INSTALL_HINT)
