"""The command line (``splatpack``, ``python -m splatpack``): parse, call the library, print.
Nothing imports this package.

* :mod:`.cli` — ``main``: parse, run, turn errors into one ``error: …`` line;
* :mod:`.parser` — argparse with errors of our own and checked option values;
* :mod:`.commands` — one module per command and the :data:`~.commands.COMMANDS` table;
* :mod:`.inspect`, :mod:`.render`, :mod:`.bench` — what ``info`` / ``export`` / ``decompress``,
  ``render`` and ``bench`` do beyond one library call; :mod:`.terminal` — waiting for Ctrl-C.
"""
