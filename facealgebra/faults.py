"""Fault injection for the tests: with FACEALGEBRA_KILL_AT=NAME in the environment, the process SIGKILLs itself
when it reaches the point called NAME (a step of a file commit or a cache write), as a power cut or an OOM killer
would stop it there. Only the tests set the variable; otherwise `point` is one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

KILL_AT = "FACEALGEBRA_KILL_AT"


def point(name: str) -> None:
    """A named place where a kill must leave nothing broken behind."""
    if os.environ.get(KILL_AT) == name:
        os.kill(os.getpid(), signal.SIGKILL)
