"""The one way a process that used the Temporal client ends: flush, then ``os._exit``.

Its own module, importing nothing of meshfleet, so that the worker, the CLI and the benchmarks
all end the same way without any of them importing another.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import NoReturn


def flush_and_exit(code: int) -> NoReturn:
    """Flush standard output and error and end the process now, with ``code``.

    The Temporal SDK can abort while the interpreter shuts down after its work is done (exit 134
    or 139; docs/operations.md, "Exiting after using the Temporal client"). ``os._exit`` skips
    that shutdown, so the caller sees the intended code every time. It also skips ``atexit``
    handlers and ``finally`` blocks further up: whatever must be cleaned up is cleaned up
    before this is called. Only the streams need flushing: nothing else is left to finish.
    """
    for stream in (sys.stdout, sys.stderr):
        # A closed pipe or stream must not change the exit code.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(int(code))
