# SPDX-License-Identifier: GPL-2.0-or-later
"""A minimal QMP client over a unix socket, for the harness's tests.

Debian 12 has no packaged QMP library (python3-qemu.qmp is not in
bookworm), so this is the protocol as docs/interop/qmp-spec.rst states
it: the server greets, the client sends qmp_capabilities, then each
command gets one reply ("return" or "error"); asynchronous events may
arrive at any time in between.  One JSON object per line."""

import json
import socket
import time


class QMPError(Exception):
    """The server answered a command with an error, or went away."""

    def __init__(self, message, error_class=None):
        super().__init__(message)
        self.error_class = error_class


class QMP:
    def __init__(self, path, timeout=30.0, alive=None):
        """Connect to the QMP server listening on unix socket path,
        retrying until it accepts, timeout seconds have passed or
        alive() (when given: is the QEMU process still there?) is false,
        and negotiate capabilities."""
        deadline = time.monotonic() + timeout
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(path)
                break
            except OSError as e:
                sock.close()
                if time.monotonic() >= deadline or (alive and not alive()):
                    raise QMPError(f"cannot connect to QMP socket {path}: "
                                   f"{e}") from None
                time.sleep(0.1)
        self.sock = sock
        self.sock.settimeout(timeout)
        self.buf = b""
        self.events = []
        greeting = self._read()
        if "QMP" not in greeting:
            raise QMPError(f"not a QMP greeting: {greeting!r}")
        self.cmd("qmp_capabilities")

    def _read(self):
        while b"\n" not in self.buf:
            try:
                data = self.sock.recv(65536)
            except OSError as e:
                raise QMPError(f"QMP connection: {e}") from None
            if not data:
                raise QMPError("QMP connection closed by QEMU")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, **args):
        """Run command name with args; return its "return" value or
        raise QMPError with the server's error description."""
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        try:
            self.sock.sendall(json.dumps(msg).encode() + b"\n")
        except OSError as e:
            raise QMPError(f"QMP connection: {e}") from None
        while True:
            reply = self._read()
            if "event" in reply:
                self.events.append(reply)
            elif "error" in reply:
                err = reply["error"]
                raise QMPError(f"{name}: {err.get('desc')}",
                               err.get("class"))
            elif "return" in reply:
                return reply["return"]

    def wait_event(self, name, **data):
        """Read until event name arrives with data among its data (or
        take it from the events already read); remove and return it."""
        while True:
            for i, e in enumerate(self.events):
                if e.get("event") == name and all(
                        e.get("data", {}).get(k) == v
                        for k, v in data.items()):
                    return self.events.pop(i)
            self.events.append(self._read())

    def close(self):
        self.sock.close()
