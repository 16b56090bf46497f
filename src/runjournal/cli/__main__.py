"""``python -m runjournal.cli``: the same as the ``runjournal`` console script."""

from runjournal.cli import main

main()
