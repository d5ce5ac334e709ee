"""The student's kernel: an IPython shell inside the jail, driven over two pipes.

The grader starts this in a bubblewrap jail (:mod:`.jail`) as
``python -m course_lib.grading.kernel_runner READ_FD WRITE_FD`` and sends it requests
(:mod:`.channel`):

- ``run``: execute a cell's source. Everything the cell shows (printed text, figures, the
  value of its last line, an error) is sent as it happens, as ``out`` messages holding
  nbformat outputs, so the grader can stop a cell that prints without end.
- ``get``: the value of a global name. Plain data (numbers, strings, arrays, lists, dicts,
  course_lib objects) is sent as data (:mod:`.value_codec`); anything else (a function, a
  Keras model) stays here and is sent as a *handle*, a number that later requests use.
- ``call``: call a handle, or a function of a course_lib student module (a probe), with
  arguments sent as data. The reply holds what it returned or raised, and the new state of
  any argument it changed in place. An argument that is a test's own function arrives as a
  stub that calls back to the grader's side.

Test cells never come here: the grader runs them in a process of its own
(:mod:`.test_runner`), which calls into this kernel through ``get`` and ``call``. Nothing a
test knows (its source, its expected values, whether it passed) is ever sent here.

This process is as untrusted as the student's code, which runs in it and can rewrite any of
it. That is fine by construction: the grader treats everything that comes back as data to
be checked, and the jail decides what the process can reach.
"""

from __future__ import annotations

import collections.abc
import itertools
import json
import os
import resource
import signal
import sys
import traceback
import types

from .channel import OutputStream, Peer
from .value_codec import encode, resolve

MAX_VALUE_BYTES = 256 * 2**20
MAX_ITEMS = 1_000_000  # a returned generator is read into a list of at most this many items


def _set_limits() -> None:
    """Per-process limits, from the jail's environment, before any student code runs."""
    for name, kind, scale in (("COURSE_JAIL_AS_MB", resource.RLIMIT_AS, 2**20),
                              ("COURSE_JAIL_FSIZE_MB", resource.RLIMIT_FSIZE, 2**20),
                              ("COURSE_JAIL_NPROC", resource.RLIMIT_NPROC, 1)):
        value = os.environ.get(name)
        if value:
            cap = int(value) * scale
            hard = resource.getrlimit(kind)[1]
            cap = cap if hard == resource.RLIM_INFINITY else min(cap, hard)
            resource.setrlimit(kind, (cap, cap))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _jsonable(tree):
    """Display data as JSON: the values a formatter returns are strings or JSON already."""
    try:
        json.dumps(tree, allow_nan=False)
        return tree
    except (TypeError, ValueError):
        return {k: str(v) for k, v in tree.items()} if isinstance(tree, dict) else str(tree)


class Kernel:
    """The shell, its handles, and the request handlers."""

    def __init__(self, read_fd: int, write_fd: int):
        self.peer = Peer(read_fd, write_fd, {"run": self.run, "get": self.get,
                                             "call": self.call})
        self.handles: dict[int, object] = {}
        self.handle_of: dict[int, int] = {}  # id(object) -> handle
        self.running_user_code = False
        self.streams = (OutputStream(self.peer, "stdout"), OutputStream(self.peer, "stderr"))
        sys.stdout, sys.stderr = self.streams
        signal.signal(signal.SIGINT, self._interrupt)
        self.shell = self._make_shell()

    # -- the shell --------------------------------------------------------------------------
    def _make_shell(self):
        from IPython.core.displayhook import DisplayHook
        from IPython.core.displaypub import DisplayPublisher
        from IPython.core.interactiveshell import InteractiveShell
        from traitlets.config import Config

        kernel = self

        class Publisher(DisplayPublisher):
            def publish(self, data, metadata=None, source=None, *, transient=None, update=False,
                        **kwargs):
                kernel.flush()
                kernel.emit({"output_type": "display_data", "data": _jsonable(data),
                             "metadata": _jsonable(metadata or {})})

            def clear_output(self, wait=False):
                pass

        class Hook(DisplayHook):
            def start_displayhook(self):
                self.result = {"output_type": "execute_result", "data": {}, "metadata": {},
                               "execution_count": self.prompt_count}

            def write_output_prompt(self):
                pass

            def write_format_data(self, format_dict, md_dict=None):
                self.result["data"] = _jsonable(format_dict)
                self.result["metadata"] = _jsonable(md_dict or {})

            def finish_displayhook(self):
                kernel.flush()
                kernel.emit(self.result)

        class Shell(InteractiveShell):
            displayhook_class = Hook
            display_pub_class = Publisher

            def _showtraceback(self, etype, evalue, stb):
                kernel.flush()
                kernel.emit({"output_type": "error", "ename": getattr(etype, "__name__", "Error"),
                             "evalue": str(evalue)[:4000], "traceback": list(stb)[-200:]})

        config = Config()
        config.HistoryManager.hist_file = ":memory:"
        config.InteractiveShell.xmode = "Context"
        return Shell.instance(config=config)

    def emit(self, output: dict) -> None:
        self.peer.send({"op": "out", "output": output})

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()

    def _interrupt(self, signum, frame):
        # The grader interrupts a cell that runs past its time; between requests there is
        # nothing to interrupt.
        if self.running_user_code:
            raise KeyboardInterrupt

    # -- requests -------------------------------------------------------------------------------
    def run(self, message: dict) -> dict:
        self.running_user_code = True
        try:
            result = self.shell.run_cell(str(message.get("code", "")), store_history=True)
        finally:
            self.running_user_code = False
            self.flush()
        return {"ok": bool(result.success)}

    def get(self, message: dict) -> dict:
        name = message.get("name")
        if not isinstance(name, str) or name not in self.shell.user_ns:
            return {"missing": True}
        return {"value": self.encode(self.shell.user_ns[name])}

    def call(self, message: dict) -> dict:
        try:
            target = self._target(message.get("target"))
            args = [self.decode(tree) for tree in message.get("args", [])]
            kwargs = {str(k): self.decode(tree) for k, tree in message.get("kwargs", {}).items()}
        except (ValueError, KeyError, TypeError) as exc:
            return {"refused": f"the call could not be read here ({exc})"}
        self.running_user_code = True
        try:
            returned = target(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - the student's error travels as data
            self.running_user_code = False
            self.flush()
            if isinstance(exc, (SystemExit, GeneratorExit)) and not isinstance(exc, Exception):
                pass  # reported like any error: the kernel goes on
            reply = {"raised": describe_exception(exc)}
        else:
            self.running_user_code = False
            self.flush()
            reply = {"returned": self.encode(_materialize(returned))}
        reply["changed"] = self._changed(message, args, kwargs)
        return reply

    # -- data and handles ---------------------------------------------------------------------
    def _target(self, tree):
        if isinstance(tree, dict) and "handle" in tree:
            return self.handles[int(tree["handle"])]
        if isinstance(tree, dict) and "import" in tree:
            module, _, qualname = str(tree["import"]).partition(":")
            return resolve(module, qualname)
        raise ValueError("no function to call")

    def encode(self, value):
        return encode(value, MAX_VALUE_BYTES, other=self._reference)

    def _reference(self, value):
        if isinstance(value, CallbackStub):
            return value.tree
        key = id(value)
        if key not in self.handle_of:
            self.handle_of[key] = len(self.handles) + 1
            self.handles[self.handle_of[key]] = value
        name = getattr(value, "__name__", None)
        return {"$": "handle", "id": self.handle_of[key], "callable": callable(value),
                "type": type(value).__qualname__[:100],
                "name": name[:100] if isinstance(name, str) else None}

    def decode(self, tree):
        from .value_codec import decode

        def refs(ref):
            kind = ref.get("$")
            if kind == "handle":
                return self.handles[int(ref["id"])]
            if kind == "callback":
                return CallbackStub(self, ref)
            module, _, qualname = str(ref.get("ref", "")).partition(":")
            return resolve(module, qualname)

        return decode(tree, refs=refs)

    def _changed(self, message: dict, args: list, kwargs: dict) -> dict:
        """Arguments the call changed in place: their new state, by slot ("0", "kw:lr")."""
        sent = {str(i): t for i, t in enumerate(message.get("args", []))}
        sent.update({f"kw:{k}": t for k, t in message.get("kwargs", {}).items()})
        now = {str(i): a for i, a in enumerate(args)}
        now.update({f"kw:{k}": v for k, v in kwargs.items()})
        changed = {}
        for slot, value in now.items():
            try:
                tree = self.encode(value)
            except Exception:  # noqa: BLE001 - an argument the student broke: not reported
                continue
            if json.dumps(tree, sort_keys=True) != json.dumps(sent.get(slot), sort_keys=True):
                changed[slot] = tree
        return changed


class CallbackStub:
    """A test's function, passed to a student's function: calling it asks the grader's side."""

    def __init__(self, kernel: Kernel, tree: dict):
        self.kernel, self.tree = kernel, tree
        self.__name__ = str(tree.get("name") or "callback")

    def __call__(self, *args, **kwargs):
        kernel = self.kernel
        reply = kernel.peer.request({
            "op": "callback", "callback": self.tree.get("id"),
            "args": [kernel.encode(a) for a in args],
            "kwargs": {k: kernel.encode(v) for k, v in kwargs.items()}})
        if "raised" in reply:
            info = reply["raised"] if isinstance(reply["raised"], dict) else {}
            raise RuntimeError(f"the test's function `{self.__name__}` raised "
                               f"{info.get('type', 'an error')}: {info.get('message', '')}")
        return kernel.decode(reply.get("returned"))


def _materialize(value):
    """A returned iterator (a generator, map, zip) read into a list, as a test would read it."""
    if isinstance(value, collections.abc.Iterator) and not isinstance(value, (str, bytes)) \
            and not hasattr(value, "__array__") and not isinstance(value, types.CoroutineType):
        items = list(itertools.islice(value, MAX_ITEMS + 1))
        if len(items) > MAX_ITEMS:
            raise ValueError(f"the returned iterator yields more than {MAX_ITEMS} items")
        return items
    return value


def describe_exception(exc: BaseException) -> dict:
    """What the grader's side needs to raise the same error again: its type and message; for
    a NotImplementedError the function that still has its stub; for a check the student's
    code ran itself, its text; and the traceback through the student's code."""
    info = {"type": type(exc).__name__, "message": str(exc)[:4000]}
    tb = exc.__traceback__
    frames = []
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    if frames:
        info["culprit"] = frames[-1].tb_frame.f_code.co_name
    notes = getattr(exc, "__notes__", None)
    if isinstance(notes, list):
        info["notes"] = [str(n)[:500] for n in notes[:5]]
    if type(exc).__name__ == "CheckFailed":
        info["check"] = {"title": str(getattr(exc, "title", ""))[:2000],
                         "details": [str(d)[:2000] for d in getattr(exc, "details", [])][:50],
                         "see": getattr(exc, "see", None) and str(exc.see)[:500]}
    here = os.path.dirname(os.path.abspath(__file__))
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    info["traceback"] = "".join(line for line in lines if here not in line)[-6000:]
    return info


def main(argv: list[str]) -> None:
    _set_limits()
    read_fd, write_fd = int(argv[0]), int(argv[1])
    Kernel(read_fd, write_fd).peer.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
