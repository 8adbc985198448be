"""``python -m usad``: the ``usad`` command."""

from usad.cli import main

main()
