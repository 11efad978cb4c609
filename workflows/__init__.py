"""Deterministic orchestration: the fleet rollout and the per-target mesh workflow.

Nothing here does I/O or imports an HTTP library: the sandbox re-imports workflow modules for every
run, and docs/performance.md ("Heavy imports in workflow modules") has what a heavy import costs
there. This package module stays empty for
the same reason: the sandbox imports it before every workflow module, so the list of workflows a
worker registers lives in ``workflows.registry``, which only the worker imports.
"""
