"""``python -m robogate.cli``: the ``robogate`` command."""

import sys

from robogate.cli.parser import main

sys.exit(main())
