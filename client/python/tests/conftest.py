"""The session's server: the same fixture as the drop-in API's tests (tests/python)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "python"))

from server_fixture import server_url  # noqa: E402,F401  (a pytest fixture)
