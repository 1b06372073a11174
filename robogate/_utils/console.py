"""What robogate writes to the terminal besides its results: progress bars and warnings.

One rule for each, whether robogate runs from the command line or from Python:

* a progress bar is drawn on stderr only when stderr is a terminal (a bar redrawn with carriage
  returns is noise in a log file or a pipe), unless the caller says otherwise with ``progress=``;
* a warning reads as one ``robogate: warning: ...`` line, printed above any bar being drawn.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

__all__ = ["progress_bar", "show_progress", "warning_printer"]

PROG = "robogate"


def show_progress(progress: bool | None) -> bool:
    """Whether to draw a progress bar: ``progress`` when given, else whether stderr is a terminal.

    Parameters
    ----------
    progress : bool or None
        True: always; False: never; None: only when stderr is a terminal.
    """
    if progress is None:
        isatty = getattr(sys.stderr, "isatty", None)
        return bool(isatty()) if callable(isatty) else False
    return bool(progress)


def progress_bar(progress: bool | None, **kwargs: Any) -> Any:
    """A tqdm bar on stderr that draws only as :func:`show_progress` says (``kwargs`` go to tqdm)."""
    from tqdm import tqdm

    return tqdm(file=sys.stderr, disable=not show_progress(progress), dynamic_ncols=True, **kwargs)


def warning_printer(shown: set[str]) -> Callable[..., None]:
    """A ``warnings.showwarning`` that prints each distinct warning once, as one ``robogate: warning:`` line.

    The line goes through ``tqdm.write``, so a bar being drawn is cleared first and redrawn below it.
    """
    from tqdm import tqdm

    def show(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        text = " ".join(str(message).split())
        if text not in shown:
            shown.add(text)
            tqdm.write(f"{PROG}: warning: {text}", file=sys.stderr if file is None else file)

    return show
