"""Values as plain JSON, so that a student's results can leave the student's process safely.

The grader runs a test cell in a process of its own, apart from the kernel that runs the
student's code (see :mod:`.test_runner` and :mod:`.kernel_runner`). What crosses between
the two processes is data only: numbers, strings, lists, tuples, dicts, sets, NumPy arrays
(as ``.npy`` bytes, read back with ``allow_pickle=False``) and the state of ``course_lib``
data objects such as
a ``course_lib.nn`` model (see ``OBJECT_MODULES``). Never pickle: unpickling runs whatever
code the data names.

Anything else (a Keras model, an object of the student's own class, a generator) is
written as ``opaque`` with its type's name, so the grader can say what it could not check.
A subclass of a plain type (a ``str`` whose ``__eq__`` always agrees, an ``ndarray``
subclass, but also an honest ``namedtuple`` or ``Counter``) is written as its base type,
read through the base type's own methods: the data crosses, the subclass's methods do not,
so a value that lies inside the kernel tells the truth outside it.

Live objects that must stay where they are (a student's function, a Keras model in the
student's kernel; a function of a test, called back from the kernel) cross as references:
the encoder's ``other`` hook turns them into ``{"$": "handle" | "callback" | "import", ...}``
and the decoder's ``refs`` hook turns those back into something callable. Without the hooks,
such values are ``opaque`` and such references are refused.

Encoded form: JSON scalars (None, bool, int, float, str) stand for themselves; everything
else is ``{"$": kind, ...}``.
"""

from __future__ import annotations

import base64
import builtins
import importlib
import io
from typing import Any

import numpy as np

MAX_DEPTH = 40
TRUSTED_PREFIX = "course_lib."  # classes whose objects are rebuilt from their state
# ...except the instructor's side: nothing of the grader is ever rebuilt from a student's data.
UNTRUSTED_PREFIXES = ("course_lib.grading", "course_lib.cli")
# Objects rebuilt from their state come from these modules only: their classes hold data and
# methods that compute on it, nothing that acts on the system when an object is made or freed.
OBJECT_MODULES = ("course_lib.nn", "course_lib.experiment", "course_lib.text", "course_lib.data")
REFERENCE_KINDS = ("handle", "callback", "import")


class Opaque:
    """Stands for a value that could not be encoded; says what it was."""

    def __init__(self, what: str):
        self.what = what

    def __repr__(self) -> str:
        return f"<{self.what}, not checkable outside the kernel>"


def _is_course_module(module: str) -> bool:
    return module.startswith(TRUSTED_PREFIX) and not module.startswith(UNTRUSTED_PREFIXES)


def _is_course_object(value: Any) -> bool:
    """An instance of a course_lib data class (a layer, a model, an optimizer, a result row):
    its state crosses."""
    return type(value).__module__ in OBJECT_MODULES and hasattr(value, "__dict__") \
        and not isinstance(value, (BaseException, type))


class _Budget:
    def __init__(self, max_bytes: int):
        self.left = max_bytes


def _npy(arr: np.ndarray, budget: _Budget) -> str:
    if arr.dtype.hasobject:
        raise TypeError("an array of Python objects")
    budget.left -= arr.nbytes
    if budget.left < 0:
        raise OverflowError("too large")
    buf = io.BytesIO()
    # (not np.ascontiguousarray: it turns a 0-d array into a 1-d one)
    np.save(buf, arr if arr.flags.c_contiguous else arr.copy(order="C"), allow_pickle=False)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def encode(value: Any, max_bytes: int = 256 * 2**20, other=None) -> Any:
    """A JSON-able tree for ``value``; parts that cannot be encoded become ``opaque``.

    max_bytes: total array bytes allowed; beyond it the rest is opaque ("too large").
    other: called with each value that is not plain data; returns its tree (a reference), or
    None to make it opaque."""
    return _encode(value, _Budget(max_bytes), 0, set(), other)


# Base type -> how to read a subclass's data without calling any method it overrides.
_AS_BASE = (
    (np.ndarray, lambda v: np.ndarray.view(v, np.ndarray)),
    (str, str.__str__), (bytes, bytes.__bytes__), (int, int.__int__),
    (float, float.__float__), (complex, complex.__complex__),
    (tuple, lambda v: tuple(tuple.__iter__(v))), (list, lambda v: list(list.__iter__(v))),
    (dict, lambda v: dict(dict.items(v))), (frozenset, lambda v: frozenset(frozenset.__iter__(v))),
    (set, lambda v: set(set.__iter__(v))),
)


def _encode(value: Any, budget: _Budget, depth: int, seen: set[int], other=None) -> Any:
    kind = type(value)
    if kind not in (bool, np.ndarray) and not isinstance(value, np.generic):
        for base, read in _AS_BASE:
            if isinstance(value, base) and kind is not base:
                try:
                    value = read(value)
                except Exception:  # noqa: BLE001 - unreadable data: say so, do not guess
                    return {"$": "opaque", "type": kind.__qualname__}
                kind = type(value)
                break
    if value is None or kind in (bool, int, str):
        return value
    if kind is float:
        return value if np.isfinite(value) else {"$": "float", "v": repr(value)}
    if depth > MAX_DEPTH or id(value) in seen:
        return {"$": "opaque", "type": "a structure nested too deeply or containing itself"}
    try:
        if kind is np.ndarray:
            return {"$": "ndarray", "v": _npy(value, budget)}
        if isinstance(value, np.generic) and kind.__module__ == "numpy":
            return {"$": "scalar", "v": _npy(np.asarray(value), budget)}
    except (TypeError, ValueError, OverflowError) as exc:
        return {"$": "opaque", "type": f"{kind.__name__} ({exc})"}
    if kind is complex:
        return {"$": "complex", "v": [repr(value.real), repr(value.imag)]}
    if kind is bytes:
        return {"$": "bytes", "v": base64.b64encode(value).decode("ascii")}
    if kind is np.random.Generator:
        state = value.bit_generator.state
        return {"$": "generator", "v": _encode(state, budget, depth + 1, seen, other)}
    seen = seen | {id(value)}
    if kind in (list, tuple, set, frozenset):
        items = sorted(value, key=repr) if kind in (set, frozenset) else value
        return {"$": kind.__name__,
                "v": [_encode(v, budget, depth + 1, seen, other) for v in items]}
    if kind is dict:
        return {"$": "dict", "v": [[_encode(k, budget, depth + 1, seen, other),
                                    _encode(v, budget, depth + 1, seen, other)]
                                   for k, v in value.items()]}
    if _is_course_object(value):
        return {"$": "object", "cls": f"{kind.__module__}:{kind.__qualname__}",
                "v": _encode(dict(vars(value)), budget, depth + 1, seen, other)}
    reference = other(value) if other is not None else None
    if reference is not None:
        return reference
    return {"$": "opaque", "type": f"{kind.__module__}.{kind.__qualname__}"
            if kind.__module__ not in ("builtins", "__main__") else kind.__qualname__}


def decode(tree: Any, depth: int = 0, refs=None) -> Any:
    """The value ``encode`` described. Raises ValueError on anything malformed.

    refs: called with each reference tree (kinds ``handle``, ``callback``, ``import``);
    returns the value that stands for it. Without it, references are malformed."""
    if tree is None or type(tree) in (bool, int, float, str):
        return tree
    if depth > MAX_DEPTH + 2 or type(tree) is not dict or "$" not in tree:
        raise ValueError("malformed record")
    kind, v = tree["$"], tree.get("v")
    if kind in ("list", "tuple", "set", "frozenset"):
        if type(v) is not list:
            raise ValueError("malformed sequence")
        items = [decode(x, depth + 1, refs) for x in v]
        return getattr(builtins, kind)(items)
    if kind == "dict":
        if type(v) is not list or any(type(p) is not list or len(p) != 2 for p in v):
            raise ValueError("malformed dict")
        return {decode(k, depth + 1, refs): decode(x, depth + 1, refs) for k, x in v}
    if kind in ("ndarray", "scalar"):
        arr = np.load(io.BytesIO(base64.b64decode(v, validate=True)), allow_pickle=False)
        return arr[()] if kind == "scalar" else arr
    if kind == "float":
        if v not in ("nan", "inf", "-inf"):
            raise ValueError("malformed float")
        return float(v)
    if kind == "complex":
        return complex(float(v[0]), float(v[1]))
    if kind == "bytes":
        return base64.b64decode(v, validate=True)
    if kind == "generator":
        state = decode(v, depth + 1)
        bit_generator = getattr(np.random, str(state["bit_generator"]), None)
        if not (isinstance(bit_generator, type) and issubclass(bit_generator,
                                                               np.random.BitGenerator)):
            raise ValueError("malformed generator")
        gen = np.random.Generator(bit_generator())
        gen.bit_generator.state = state
        return gen
    if kind == "object":
        cls = _trusted_class(tree.get("cls"))
        obj = cls.__new__(cls)
        state = decode(v, depth + 1, refs)
        if type(state) is not dict or not all(type(k) is str for k in state):
            raise ValueError("malformed object state")
        obj.__dict__.update(state)
        return obj
    if kind == "opaque":
        return Opaque(str(tree.get("type", "an unknown value"))[:200])
    if kind in REFERENCE_KINDS and refs is not None:
        return refs(tree)
    raise ValueError(f"unknown kind {kind!r}")


def _trusted_class(name: Any) -> type:
    if type(name) is not str or ":" not in name:
        raise ValueError("object of a class outside course_lib")
    module, qualname = name.split(":", 1)
    if module not in OBJECT_MODULES:
        raise ValueError("object of a class outside course_lib's data modules")
    obj = resolve(module, qualname)
    if not isinstance(obj, type) or issubclass(obj, BaseException):
        raise ValueError(f"{name} is not a class")
    return obj


def resolve(module: str, qualname: str) -> Any:
    """``module``'s attribute ``qualname`` (dotted), for a course_lib student module only."""
    if type(module) is not str or type(qualname) is not str or not _is_course_module(module) \
            or any(not part.isidentifier() or part.startswith("_") for part in qualname.split(".")):
        raise ValueError(f"{module}:{qualname} is not a course_lib name")
    try:
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"{module}:{qualname} does not exist ({exc})") from None
    return obj


def importable_name(fn: Any) -> str | None:
    """``"module:qualname"`` when ``fn`` is a module-level function of a course_lib student
    module that :func:`resolve` finds again, else None."""
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    try:
        return f"{module}:{qualname}" if resolve(module, qualname) is fn else None
    except ValueError:
        return None


def find_opaque(value: Any, depth: int = 0) -> Opaque | None:
    """The first :class:`Opaque` inside a decoded value, or None."""
    if isinstance(value, Opaque):
        return value
    if depth > MAX_DEPTH + 2:
        return None
    if isinstance(value, (list, tuple, set, frozenset)):
        parts = value
    elif isinstance(value, dict):
        parts = [*value.keys(), *value.values()]
    elif _is_course_object(value):
        parts = vars(value).values()
    else:
        return None
    for part in parts:
        found = find_opaque(part, depth + 1)
        if found is not None:
            return found
    return None


def sync_into(target: Any, state: Any, depth: int = 0) -> bool:
    """Make ``target`` (an argument in the grader's process) equal ``state`` (the decoded
    value of the same argument after the student's function ran), in place where possible,
    so that objects sharing parts with it (a model sharing layers) see the change too.

    Returns False when ``target`` cannot take the change in place (the caller then reports
    the argument as changed in a way the check cannot follow)."""
    if depth > MAX_DEPTH:
        return False
    if isinstance(target, np.ndarray) and isinstance(state, np.ndarray):
        if target.shape != state.shape or not target.flags.writeable:
            return False
        target[...] = state
        return True
    if isinstance(target, np.random.Generator) and isinstance(state, np.random.Generator):
        target.bit_generator.state = state.bit_generator.state
        return True
    if isinstance(target, dict) and isinstance(state, dict):
        for key in list(target):
            if key not in state:
                del target[key]
        for key, new in state.items():
            if key not in target or not sync_into(target[key], new, depth + 1):
                target[key] = new
        return True
    if isinstance(target, list) and isinstance(state, list):
        if len(target) == len(state):
            for i, new in enumerate(state):
                if not sync_into(target[i], new, depth + 1):
                    target[i] = new
        else:
            target[:] = state
        return True
    if type(target) is type(state) and _is_course_object(target):
        sync_into(target.__dict__, state.__dict__, depth + 1)
        return True
    return False
