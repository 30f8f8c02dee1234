"""The ``geoalign`` command line: parses options and calls library functions, nothing more."""
