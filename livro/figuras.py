"""Numbers as a Brazilian reader writes them, in printed outputs and on figure axes.

* ``br(0.9822, ".4f")`` → ``"0,9822"``; ``br(12345.6, ",.1f")`` → ``"12.345,6"`` (the
  decimal and thousands separators swapped; the value in ``results/`` keeps its point);
* ``virgula(ax1, ax2, ...)`` (no argument: every axis of the current figure) writes the tick
  labels of linear axes with a decimal comma. Log and categorical axes are left as they are.
"""
from __future__ import annotations

_SWAP = str.maketrans({".": ",", ",": "."})


def br(valor, fmt: str = "") -> str:
    """``valor`` formatted with ``fmt`` and Brazilian separators (decimal comma)."""
    return format(valor, fmt).translate(_SWAP)


def virgula(*axes) -> None:
    """Decimal comma on the tick labels (and offset text) of the linear axes given."""
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    class Virgula(ticker.ScalarFormatter):
        def __call__(self, x, pos=None):
            return super().__call__(x, pos).translate(_SWAP)

        def get_offset(self):
            return super().get_offset().translate(_SWAP)

    for ax in axes or plt.gcf().get_axes():
        for eixo in (ax.xaxis, ax.yaxis):
            if type(eixo.get_major_formatter()) is ticker.ScalarFormatter:
                eixo.set_major_formatter(Virgula())
