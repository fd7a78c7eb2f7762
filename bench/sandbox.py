"""A throwaway demo environment for a bench: its own data directory, keyring and secret.

Imported first by every bench, before anything reads the settings; the directory goes when the
process ends. A bench never touches the real data directory or keyring.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import tempfile
from pathlib import Path

TMP = Path(tempfile.mkdtemp(prefix="kodomo-bench-"))
atexit.register(shutil.rmtree, TMP, ignore_errors=True)
os.environ.update(
    {
        "KODOMO_DEMO": "1",
        "KODOMO_DATA_DIR": str(TMP),
        "KODOMO_KEY_FILE": str(TMP / "keys.json"),
        "KODOMO_SECRET_KEY": secrets.token_urlsafe(48),
    }
)
os.environ.pop("KODOMO_DATABASE_URL", None)
