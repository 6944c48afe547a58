"""A fixture that runs a test module's torch code on one intra-op thread.

These tests push tiny tensors through many small ops. A second torch thread
adds nothing there, and on the shared 2-core machine, while another process
keeps a core busy, its spin-waits made a 1-second training test take over 60
seconds. Import ``one_torch_thread`` into a test module to apply it (autouse).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
