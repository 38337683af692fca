"""Look inside a trained run: feature maps, Grad-CAM and the most confidently wrong images.

Modules (their commands, flags and output files are in :mod:`cnnhub.commands`):

* ``cnnhub featuremaps RUN IMAGE`` (:mod:`cnnhub.explain.featuremaps`): a PNG grid of each
  conv layer's activations, in ``RUN/explain/featuremaps/<image stem>/``.
* ``cnnhub gradcam RUN IMAGE`` (:mod:`cnnhub.explain.gradcam`): a Grad-CAM heatmap over the
  image, in ``RUN/explain/gradcam/<image stem>_<class>.png``.
* ``cnnhub errors RUN`` (:mod:`cnnhub.explain.errors`): a gallery of the most confidently
  wrong validation images, ``RUN/explain/errors_<weights stem>.png`` (+ ``.csv``).

Every command takes ``--weights`` (default ``best``, see :mod:`cnnhub.run_loading`) and
``--out``. Class names, layer names and file names are untrusted text: plots show them
literally (``$`` escaped for matplotlib's mathtext) and file names made from them are
sanitised (:func:`cnnhub.run_loading.safe_file_name`).
"""
