"""The ``meshfleet`` command line: validate, plan, start and steer rollouts, run the stack."""
