"""A run's one-page report (``report.html``) and model card (``MODEL_CARD.md``).

* :mod:`~cnnhub.report.contents` - what the run folder holds, read through
  :mod:`cnnhub.run_folder`.
* :mod:`~cnnhub.report.page` - the self-contained HTML page (escaped text, inline PNGs).
* :mod:`~cnnhub.report.figures` - its pictures.
* :mod:`~cnnhub.report.card` - the Markdown model card.

Both files are written at the end of every post-evaluated run and by ``cnnhub report RUN``.
"""

from __future__ import annotations

import os
from pathlib import Path

from cnnhub import atomic


def write_report(run_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``report.html`` and ``MODEL_CARD.md`` into the run folder ``run_dir``.

    Everything is read and rendered before either file is written (atomically).

    Returns:
        ``{"html": path, "card": path}``.

    Raises:
        CnnhubError: not a run folder, or one of its files is damaged.
    """
    from cnnhub.report import card, page  # lazy: matplotlib and pandas
    from cnnhub.report.contents import gather

    contents = gather(run_dir)
    html_text = page.render(contents)
    card_text = card.render(contents)
    folder = contents.run.folder
    atomic.write_text(folder.report_html, html_text)
    atomic.write_text(folder.model_card, card_text)
    return {"html": folder.report_html, "card": folder.model_card}
