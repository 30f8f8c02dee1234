"""Running a field predictor over a raster and moving a building layer by its field.

Below ``dataset``, ``train`` and ``align`` in the data's path, so that all three align buildings
the same way (:func:`geoalign.inference.layer.align_layer`): the tiler
(:mod:`~geoalign.inference.tiling`), composed pipelines (:mod:`~geoalign.inference.compose`)
and the predictor protocol they code against (:mod:`~geoalign.inference.protocol`).
"""
