"""Reading and writing geodata: rasters, vectors, atomic outputs."""
