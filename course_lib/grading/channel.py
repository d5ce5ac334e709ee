"""The message protocol between the grader and the two processes it jails.

Messages are JSON objects, one per line, over a pair of pipes. A request carries an ``op``
and an ``id``; its answer is ``{"op": "reply", "id": ...}``. Requests nest: while a process
waits for the reply to its own request, it serves the requests that arrive (a student's
function calling back a test's function, which calls another student function, ...), so
either side may be waiting on the other at any depth and nothing deadlocks.

This module is the side that runs *inside* a jail (:mod:`.kernel_runner`,
:mod:`.test_runner`): plain blocking reads. The grader's side, which must also watch time,
memory and output while it reads, is :mod:`.jailed_process`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable


def dumps(message: dict) -> bytes:
    """One message as a line of UTF-8 JSON (NaN written as the strings the codec uses)."""
    return (json.dumps(message, separators=(",", ":"), allow_nan=False) + "\n").encode()


class Peer:
    """One end of the protocol: send requests and wait for their replies; serve the rest.

    handlers: op -> function(message) returning the reply's fields (a dict), or None for a
    notification that gets no reply.
    """

    def __init__(self, read_fd: int, write_fd: int, handlers: dict[str, Callable]):
        self._in = os.fdopen(read_fd, "rb", buffering=1 << 16, closefd=False)
        self._out = write_fd
        self.handlers = handlers
        self._next = 0

    def send(self, message: dict) -> None:
        data = dumps(message)
        while data:
            data = data[os.write(self._out, data):]

    def receive(self) -> dict:
        line = self._in.readline()
        if not line:
            raise EOFError("the grader closed the connection")
        return json.loads(line)

    def request(self, message: dict) -> dict:
        """Send ``message`` as a request; serve nested requests until its reply arrives."""
        self._next += 1
        ident = f"{os.getpid()}-{self._next}"
        self.send({**message, "id": ident})
        while True:
            incoming = self.receive()
            if incoming.get("op") == "reply" and incoming.get("id") == ident:
                return incoming
            self.serve(incoming)

    def serve(self, message: dict) -> None:
        handler = self.handlers.get(message.get("op"))
        if handler is None:
            reply = {"error": f"unknown request {message.get('op')!r}"}
        else:
            reply = handler(message)
        if reply is not None and "id" in message:
            self.send({"op": "reply", "id": message["id"], **reply})

    def serve_forever(self) -> None:
        while True:
            try:
                message = self.receive()
            except EOFError:
                return
            self.serve(message)


class OutputStream:
    """A stand-in for sys.stdout or sys.stderr: what is written goes out as ``out`` messages
    (nbformat stream outputs), in pieces, so the grader sees output as it is made."""

    CHUNK = 8192

    def __init__(self, peer: Peer, name: str):
        self.peer, self.name, self.buffer, self.size = peer, name, [], 0
        self.encoding, self.errors = "utf-8", "replace"

    def write(self, text) -> int:
        text = str(text)
        self.buffer.append(text)
        self.size += len(text)
        if self.size >= self.CHUNK:
            self.flush()
        return len(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self.buffer:
            text, self.buffer, self.size = "".join(self.buffer), [], 0
            self.peer.send({"op": "out", "output": {"output_type": "stream", "name": self.name,
                                                    "text": text}})

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return 1 if self.name == "stdout" else 2

    @property
    def closed(self) -> bool:
        return False

    def readable(self) -> bool:
        return False

    def writable(self) -> bool:
        return True
