"""Progress bars, and the one rule for how they are drawn.

A notebook widget bar only lives as long as the front end that draws it: a notebook run by
papermill or ``nbconvert --execute`` has none, so a widget bar is saved frozen at 0 %.
Every bar of the workbench is therefore made here:

* :func:`interactive` is True when a person is looking at the kernel through a Jupyter
  front end. ``$WORKBENCH_PROGRESS`` (``text`` or ``widget``) decides when set; otherwise a
  widget is used only in an IPython kernel started by a Jupyter server (JupyterLab and
  Notebook set ``JPY_SESSION_NAME`` for the kernels of their sessions) or in Colab.
  Papermill, nbclient and nbconvert start kernels with neither, so they get text.
* :func:`tqdm` is ``tqdm.notebook.tqdm`` when :func:`interactive`, else tqdm's text bar,
  which is left on screen at 100 % and, inside a kernel, redrawn at most every
  :data:`TEXT_MININTERVAL_S` seconds so that a saved notebook keeps a short log.
* :func:`lightning_progress_bar` is Lightning's ``TQDMProgressBar`` under the same rule
  (Lightning itself picks ``tqdm.auto``, i.e. a widget in any kernel).

A papermill run started from inside a JupyterLab notebook cell inherits that kernel's
``JPY_SESSION_NAME``; set ``WORKBENCH_PROGRESS=text`` for it.
"""

from __future__ import annotations

import os
import sys
from typing import Any

__all__ = ["PROGRESS_ENV", "FRONTEND_ENV", "TEXT_MININTERVAL_S", "in_kernel", "interactive", "tqdm",
           "lightning_progress_bar"]

#: ``text`` or ``widget``: overrides the detection.
PROGRESS_ENV = "WORKBENCH_PROGRESS"
#: Set by jupyter_server for the kernels of its notebook sessions (not for papermill's).
FRONTEND_ENV = "JPY_SESSION_NAME"
#: Seconds between redraws of a text bar inside a kernel (its output is saved in the notebook).
TEXT_MININTERVAL_S = 1.0
_MODES = ("text", "widget")


def in_kernel() -> bool:
    """Whether this code runs inside an IPython (Jupyter) kernel."""
    if "ipykernel" not in sys.modules:
        return False
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def interactive() -> bool:
    """Whether bars should be notebook widgets (see the module docstring for the rule)."""
    forced = os.environ.get(PROGRESS_ENV, "").strip().lower()
    if forced:
        if forced not in _MODES:
            raise ValueError(f"${PROGRESS_ENV}={forced!r}: use one of {', '.join(_MODES)} (or leave it unset).")
        return forced == "widget"
    if not in_kernel():
        return False
    return bool(os.environ.get(FRONTEND_ENV)) or "google.colab" in sys.modules


def tqdm(iterable: Any = None, **kwargs: Any):
    """A tqdm bar drawn as :func:`interactive` says (same arguments as ``tqdm.tqdm``)."""
    if interactive():
        from tqdm.notebook import tqdm as bar
    else:
        from tqdm.std import tqdm as bar

        if in_kernel():
            kwargs.setdefault("mininterval", TEXT_MININTERVAL_S)
    return bar(iterable, **kwargs)


def lightning_progress_bar(refresh_rate: int = 1):
    """Lightning's ``TQDMProgressBar``, drawing text bars unless :func:`interactive`."""
    from lightning.pytorch.callbacks import TQDMProgressBar

    if interactive():
        return TQDMProgressBar(refresh_rate=refresh_rate)
    return _text_progress_bar_class()(refresh_rate=refresh_rate)


def _text_progress_bar_class():
    from unittest import mock

    from lightning.pytorch.callbacks import TQDMProgressBar
    from lightning.pytorch.callbacks.progress import tqdm_progress
    from tqdm.std import tqdm as text_tqdm

    class TextTqdm(text_tqdm):
        format_num = staticmethod(tqdm_progress.Tqdm.format_num)  # Lightning's padded numbers

    class TextProgressBar(TQDMProgressBar):
        """Lightning's bars as tqdm text bars (Lightning builds them from its module's ``Tqdm``)."""

        def _text(self, make):
            with mock.patch.object(tqdm_progress, "Tqdm", TextTqdm):
                return make()

        def init_sanity_tqdm(self):
            return self._text(super().init_sanity_tqdm)

        def init_train_tqdm(self):
            return self._text(super().init_train_tqdm)

        def init_predict_tqdm(self):
            return self._text(super().init_predict_tqdm)

        def init_validation_tqdm(self):
            return self._text(super().init_validation_tqdm)

        def init_test_tqdm(self):
            return self._text(super().init_test_tqdm)

    return TextProgressBar
