"""geoalign: align building vector maps to aerial/satellite imagery.

The package follows the path of the data: ``sources`` (download) → ``io`` (read/write, CRS)
→ ``rasterize`` → ``deform`` → ``dataset`` (multiscale pairs) → ``model`` → ``train`` → ``align``
→ ``evaluate`` → ``report``.
"""

__version__ = "0.1.0"
