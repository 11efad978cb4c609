"""Reliability and security scenarios: crashes, restarts, faults, bad input, secrets.

Each ``test_*`` module holds one concern. The bounded variant of every scenario runs in
``make test``; the heavier variants are marked ``chaos`` and run with ``make chaos``. Results and
findings: docs/reliability.md.
"""
