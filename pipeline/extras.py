"""Optional dependencies: the one place that imports them and says what to install when one is missing.

The base install trains and reports; each command that needs more calls `require` first, so a missing
package is one `error: ...` line naming the extra (pyproject.toml's [project.optional-dependencies]).
"""

from __future__ import annotations

import importlib

from pipeline.errors import TextbenchError

# top-level module → what `pip install` needs to bring it
INSTALL = {
    "fastapi": "textbench[serve]",
    "uvicorn": "textbench[serve]",
    "onnx": "textbench[export]",
    "onnxruntime": "textbench[export]",
    "lime": "textbench[explain]",
    "prefect_dask": "textbench[dask]",
    "prefect_ray": "prefect-ray",
}


def require(*modules: str) -> None:
    """Import each of `modules` (keys of INSTALL); a missing one is a TextbenchError saying what to install."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module:  # the package is there but broken (one of its own imports): not ours to explain
                raise
            raise TextbenchError(f"{module} is not installed: pip install '{INSTALL[module]}'") from None
