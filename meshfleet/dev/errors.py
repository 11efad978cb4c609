"""What can keep the dev stack from starting, each with a message that says what to do."""

from __future__ import annotations


class DevStackError(RuntimeError):
    """The dev stack could not start; the message says what to do."""


class PortInUseError(DevStackError):
    """A port the stack needs is taken; nothing was started."""


class MissingExtraError(DevStackError):
    """A program the stack runs is not installed: its package is an extra of meshfleet's."""
