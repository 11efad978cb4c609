"""``python -m meshfleet``: the same CLI as the ``meshfleet`` console script."""

from meshfleet.cli import main

main()
