"""cnnhub studio: a local web app (Gradio) over the same engine as the command line.

``python -m cnnhub studio [--root DIR]`` serves six pages - Data, Model, Train, Runs, Try,
Export - each a thin layer over the library modules the commands use. The modules, one job each:

* :mod:`~cnnhub.studio.workspace` - the root folder every path is confined to;
* :mod:`~cnnhub.studio.process` - training subprocesses (start, stop, resume, one per run folder);
* :mod:`~cnnhub.studio.data`, :mod:`~cnnhub.studio.model`, :mod:`~cnnhub.studio.train`,
  :mod:`~cnnhub.studio.runs`, :mod:`~cnnhub.studio.try_`, :mod:`~cnnhub.studio.export` - the
  handlers of each page (plain functions of plain values, tested without a browser);
* :mod:`~cnnhub.studio.app` - the Gradio layout that wires the handlers to the pages.

Only :mod:`~cnnhub.studio.app` imports Gradio.
"""
