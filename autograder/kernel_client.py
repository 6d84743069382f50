"""The kernel client nbgrader executes a submission's notebooks with: jupyter_client's own,
except that no IOPub message is ever dropped.

A kernel publishes a cell's outputs and its closing "idle" status on its IOPub socket,
and ZeroMQ drops published messages once 1,000 wait at each end (the sockets' default
high-water marks). A correct submission's Trolley fit shows nutpie's progress bar, a few
messages a second for minutes; on a busy machine nbgrader's process reads them more
slowly than they come, ZeroMQ dropped the rest of the cell's messages, the "idle" among
them, and nbclient, waiting for it, failed the whole notebook ("Timeout waiting for IOPub
output", however long it waited): the submission was never graded. A message dropped
could as well have been a test cell's error, which nbgrader grades by. So the client
receives into an unbounded queue (``RCVHWM = 0``): its ZeroMQ thread takes every message
off the wire at once, the kernel's side never fills, and nbclient reads them when it can.
The memory this can take is the submission's own output, within its memory limit.

This fills a gap of jupyter_client, which offers no setting for it; nbgrader's executor
uses it through ``c.KernelManager.client_class`` (:func:`config_lines`).
"""

from __future__ import annotations

import zmq
from jupyter_client.asynchronous import AsyncKernelClient

__all__ = ["UnboundedIOPubClient", "config_lines"]


class UnboundedIOPubClient(AsyncKernelClient):
    """An asynchronous kernel client whose IOPub socket has no receive high-water mark."""

    def connect_iopub(self, identity: bytes | None = None) -> zmq.Socket:
        sock = self.context.socket(zmq.SUB)
        sock.linger = 1000
        sock.rcvhwm = 0  # before connecting: ZeroMQ applies it when the connection is made
        if identity:
            sock.identity = identity
        if getattr(self, "curve_publickey", None) is not None:  # as jupyter_client's own sockets
            sock.curve_secretkey = self.curve_secretkey
            sock.curve_publickey = self.curve_publickey
            sock.curve_serverkey = self.curve_publickey
        sock.connect(self._make_url("iopub"))
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        return sock


def config_lines() -> str:
    """The lines of an nbgrader_config.py that make nbgrader's executor use this client."""
    return f"c.KernelManager.client_class = {f'{__name__}.{UnboundedIOPubClient.__name__}'!r}\n"
