"""Public names of a package loaded from their modules on first use (PEP 562).

A package's ``__init__`` that imported every module would make each light import pay for the
heavy ones (geopandas, scikit-image, torch): ``geoalign --help`` and every Dask worker's start-up
would load them all. With :func:`lazy_exports` a name is imported when it is first read.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """(``__getattr__``, ``__dir__``) for ``package``: ``exports`` maps each public name to the
    module defining it; the first read imports that module and keeps the value in the package.
    Submodules not yet imported are imported on first read too, as after a plain import."""

    def __getattr__(name: str) -> object:
        namespace = sys.modules[package].__dict__
        if name in exports:
            value = getattr(importlib.import_module(exports[name]), name)
        elif importlib.util.find_spec(f"{package}.{name}") is not None:
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*sys.modules[package].__dict__, *exports})

    return __getattr__, __dir__
