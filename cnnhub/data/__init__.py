"""Labelled image data, from files on disk to ``tf.data`` batches.

* :mod:`~cnnhub.data.sources` - every dataset layout read into one :class:`DataSource`.
* :mod:`~cnnhub.data.images` - finding image files and decoding one (Pillow, EXIF, alpha).
* :mod:`~cnnhub.data.scan` - the decode check of a whole dataset, file hashes, their caches.
* :mod:`~cnnhub.data.splits` - stratified train/valid split, ``split.csv``, K-fold assignment.
* :mod:`~cnnhub.data.sets` - a run's checked train/valid/test sets (:class:`Splits`).
* :mod:`~cnnhub.data.inspect` - the dataset report (counts, sizes, duplicates, leakage).
* :mod:`~cnnhub.data.class_weights`, :mod:`~cnnhub.data.augment`,
  :mod:`~cnnhub.data.pipeline` (tf.data), :mod:`~cnnhub.data.tf_images` (TensorFlow's decoder).

Nothing is imported here, so importing one module loads only what it needs.
"""
