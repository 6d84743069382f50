"""nbgrader's kernel client drops no output: a kernel that publishes faster than a busy
grader reads still delivers its closing "idle" (autograder/kernel_client.py)."""

from __future__ import annotations

import asyncio
import time
from queue import Empty

import pytest
from conftest import machine_seconds
from jupyter_client.manager import AsyncKernelManager

from autograder import kernel_client

#: More messages than ZeroMQ keeps at both ends by default (1,000 each).
FLOOD = "for i in range(5000):\n    print(i, flush=True)"


async def _flood_while_not_reading(client_class: str, folder) -> tuple[bool, int]:
    """Run FLOOD in a fresh kernel, read nothing until it has surely finished (as a client
    on a busy machine), then read: (whether the cell's "idle" came, messages read)."""
    km = AsyncKernelManager(kernel_name="python3", transport="ipc", ip=str(folder / "kernel"), client_class=client_class)
    await km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=machine_seconds(60))
        msg_id = kc.execute(FLOOD)
        reply = await kc.get_shell_msg(timeout=machine_seconds(60))  # the cell has run: every message has been published
        assert reply["content"]["status"] == "ok"
        time.sleep(2)  # noqa: ASYNC251  (blocks the loop on purpose: nothing is read, as in a starved grader)
        seen = 0
        while True:
            try:
                msg = await kc.get_iopub_msg(timeout=5)
            except Empty:  # nothing more is coming
                return False, seen
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            seen += 1
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return True, seen
    finally:
        kc.stop_channels()
        await km.shutdown_kernel(now=True)


def test_the_graders_client_receives_every_message_of_a_flooding_cell(tmp_path):
    cls = f"{kernel_client.__name__}.{kernel_client.UnboundedIOPubClient.__name__}"
    idle, seen = asyncio.run(_flood_while_not_reading(cls, tmp_path))
    assert idle and seen > 2000


def test_jupyter_clients_own_client_drops_them(tmp_path):
    """Why the grader has a client of its own: with jupyter_client's, the same cell's
    "idle" never arrives (if this starts failing, jupyter_client fixed it)."""
    idle, seen = asyncio.run(_flood_while_not_reading("jupyter_client.asynchronous.AsyncKernelClient", tmp_path))
    assert not idle and seen <= 2000


def test_nbgraders_executor_is_configured_with_it(tmp_path):
    from traitlets.config.loader import PyFileConfigLoader

    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\n" + kernel_client.config_lines())
    config = PyFileConfigLoader("nbgrader_config.py", path=str(tmp_path)).load_config()
    km = AsyncKernelManager(config=config)  # nbclient's default manager, as nbgrader's executor makes it
    assert km.client_factory is kernel_client.UnboundedIOPubClient


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
