"""The session's server (see server_fixture.py)."""

from server_fixture import server_url  # noqa: F401  (a pytest fixture)
