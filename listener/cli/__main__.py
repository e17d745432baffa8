"""``python -m listener.cli``: the ``listener`` command without its console script."""

from listener.cli import main

main()
