"""textbench: a reproducible benchmark of text classifiers (library code behind the `textbench` CLI)."""

__version__ = "0.1.0"
