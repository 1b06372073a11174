"""The ``robogate`` command line: one module per command group, each handler parsing its flags, calling
the library and printing; the flags they share (:mod:`robogate.cli.flags`); :func:`main`.

The top layer: it imports any of robogate, and nothing imports it.
"""

from robogate.cli.parser import main

__all__ = ["main"]
