"""Running a command as another account of this machine, for tests that need one (grading as
a normal user, students of a shared nbgrader exchange). Only root can do it."""

import os
import subprocess
import sys
from pathlib import Path


def ensure_user(name: str) -> int:
    """The uid of account ``name``, made (with a home folder) if this machine lacks it."""
    if subprocess.run(["id", name], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--create-home", name], check=True)
    return int(subprocess.run(["id", "-u", name], capture_output=True, text=True,
                              check=True).stdout)


def command_as(uid: int, argv: list[str]) -> list[str]:
    """``argv`` run under ``uid``, seeing the machine as it is except for root's home.

    The interpreter of this test run may live in root's home, which another account cannot
    enter; so root's home is hidden and only the Python installation stays visible there (as
    on a machine with Python installed for everyone)."""
    python_home = Path(sys.base_prefix).resolve()
    view = ["bwrap", "--dev-bind", "/", "/", "--tmpfs", "/root"]
    if str(python_home).startswith("/root/"):
        for parent in reversed(python_home.parents):
            if str(parent).startswith("/root/"):
                view += ["--perms", "0755", "--dir", str(parent)]
        view += ["--ro-bind", str(python_home), str(python_home)]
    return view + ["--", "setpriv", f"--reuid={uid}", f"--regid={uid}", "--init-groups", *argv]


def is_root() -> bool:
    return os.geteuid() == 0
