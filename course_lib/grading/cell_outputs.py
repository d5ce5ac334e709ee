"""Outputs of the student's kernel, made safe to keep in a graded notebook.

Everything the kernel sends is data the student controls. Before it goes into the notebook
that nbgrader scores and turns into feedback, each output is rebuilt from its text fields
only (a mime bundle keeps string values; tracebacks keep their string lines), adjacent
pieces of printed text are joined, and at most ``STORED_OUTPUT_BYTES`` are kept per cell.
"""

from __future__ import annotations

from nbformat.v4 import new_output

STORED_OUTPUT_BYTES = 100_000  # per cell


def error_output(name: str, text: str) -> dict:
    return new_output("error", ename=name, evalue=text, traceback=text.splitlines() or [name])


def merge_outputs(outputs: list[dict]) -> list:
    """The outputs as nbformat outputs (text and data strings only), adjacent stream pieces
    joined, at most STORED_OUTPUT_BYTES of them kept."""
    merged: list = []
    size = 0
    for raw in outputs:
        if not isinstance(raw, dict) or raw.get("output_type") not in (
                "stream", "display_data", "execute_result", "error"):
            continue
        output = _as_output(raw)
        size += _size(output)
        if size > STORED_OUTPUT_BYTES:
            merged.append(new_output("stream", name="stdout",
                                     text=f"\n[output cut at {STORED_OUTPUT_BYTES // 1000} kB]\n"))
            break
        if output.output_type == "stream" and merged and merged[-1].output_type == "stream" \
                and merged[-1].name == output.name:
            merged[-1].text += output.text
        else:
            merged.append(output)
    return merged


def _size(output) -> int:
    if output.output_type == "stream":
        return len(output.text)
    if output.output_type == "error":
        return len(output.evalue) + sum(len(t) for t in output.traceback)
    return sum(len(v) for v in output.data.values())


def _as_output(output: dict):
    kind = output["output_type"]
    if kind == "stream":
        name = output.get("name") if output.get("name") in ("stdout", "stderr") else "stdout"
        text = output.get("text", "")
        return new_output("stream", name=name, text=text if isinstance(text, str) else "")
    if kind == "error":
        tb = output.get("traceback")
        return new_output("error", ename=str(output.get("ename", "Error"))[:200],
                          evalue=str(output.get("evalue", ""))[:10_000],
                          traceback=[t for t in tb if isinstance(t, str)][:500]
                          if isinstance(tb, list) else [])
    data = output.get("data") if isinstance(output.get("data"), dict) else {}
    data = {str(k): v for k, v in data.items() if isinstance(v, str)}  # text and base64 only
    if kind == "execute_result":
        return new_output("execute_result", data=data, execution_count=None)
    return new_output("display_data", data=data)
