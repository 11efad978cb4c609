"""``python -m meshfleet``: the same CLI as the ``meshfleet`` console script."""

from meshfleet.cli.app import main

main()
