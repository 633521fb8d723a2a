"""Where numba keeps the compiled loops of ``serving.forest`` and ``serving.mmr_kernel``.

numba caches a compiled function beside its source (``serving/__pycache__``) or, when
that is read-only (an installed package run by another user), in the user's cache
directory.  When neither can be written, ``cache=True`` fails at the first call; so
before the first compile (this module is imported by both), :func:`ensure_cache_dir`
points ``NUMBA_CACHE_DIR`` at a private temporary directory in that case, and has numba
re-read its configuration if it is already imported (an operator's own
``NUMBA_CACHE_DIR`` is kept).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path


def _writable(directory: Path) -> bool:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(directory, os.W_OK | os.X_OK)


def ensure_cache_dir(source_dir: Path | None = None) -> str | None:
    """Set ``NUMBA_CACHE_DIR`` when numba could not cache anywhere; returns the directory set, or None."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return None
    here = source_dir if source_dir is not None else Path(__file__).resolve().parent
    user_cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "numba"
    if _writable(here / "__pycache__") or _writable(user_cache):
        return None
    chosen = Path(tempfile.gettempdir()) / f"streamrec-numba-{os.getuid()}"
    chosen.mkdir(mode=0o700, exist_ok=True)
    os.environ["NUMBA_CACHE_DIR"] = str(chosen)
    config = sys.modules.get("numba.core.config")
    if config is not None:  # numba already imported: make it read the variable again
        config.reload_config()
    return str(chosen)


ensure_cache_dir()
