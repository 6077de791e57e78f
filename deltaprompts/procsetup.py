"""Set-up of the processes deltaprompts owns (the command line and generate's fork server), never
of a user's Python: importing deltaprompts as a library changes nothing here."""

import os
import sys


def skip_pymupdf_layout() -> None:
    """Keep PyMuPDF from loading its layout analyser at import.

    PyMuPDF 2 imports `pymupdf.layout` whenever the `pymupdf_layout` package is installed (PyMuPDF
    requires it), and that import loads an ONNX model: about 0.5 s of every process start. Only
    `Page.get_layout()` uses it; we rasterise pages and read their words. A `None` entry in
    sys.modules makes that one import fail as "not installed", which PyMuPDF allows for. No-op once
    PyMuPDF is imported.
    """
    if "pymupdf" not in sys.modules:
        sys.modules.setdefault("pymupdf.layout", None)  # type: ignore[arg-type]
        os.environ.setdefault("PYMUPDF_SUGGEST_LAYOUT_ANALYZER", "0")  # and no advice to install it
