"""Named points where a test can make the process die as if killed (SIGKILL).

Set CREDITRECON_FAILPOINT to a point's name, e.g. ``ingest:batch:3`` (before staging the
third batch of new files), ``build:step:charges`` or ``build:publish``. Unset, this costs one
dictionary lookup; it exists so the crash tests can prove that a run killed anywhere
leaves the published warehouse as it was.
"""

from __future__ import annotations

import os
import signal


def failpoint(name: str) -> None:
    if os.environ.get("CREDITRECON_FAILPOINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
