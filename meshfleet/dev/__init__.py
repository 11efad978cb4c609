"""The embedded stack for ``meshfleet dev`` and ``make demo``: dev server, simulator and worker."""
