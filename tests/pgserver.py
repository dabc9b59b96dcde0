"""A real PostgreSQL server for the tests that need one (optuna's RDB storage).

``.ci/with-postgres CMD`` starts a throw-away PostgreSQL 15 and exports its URL as
``SERCAP_TEST_POSTGRES`` (``postgresql+psycopg://postgres@127.0.0.1:PORT/DB``). Without that
variable the tests that need a server are skipped with the reason, never passed silently; with
it, an unreachable server is a failure (CI asked for one and did not get it).
"""

from __future__ import annotations

import os
import uuid

import pytest

ENV_VAR = "SERCAP_TEST_POSTGRES"


def postgres_url() -> str:
    """The test server's SQLAlchemy URL, checked to answer; skips the test without one."""
    url = os.environ.get(ENV_VAR, "").strip()
    if not url:
        pytest.skip(
            f"no PostgreSQL server: set {ENV_VAR}=postgresql+psycopg://USER@HOST:PORT/DB or run "
            "through .ci/with-postgres"
        )
    try:
        import psycopg
    except ImportError:
        pytest.skip('psycopg is not installed: pip install "sercap[cluster]"')
    plain = url.replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        with psycopg.connect(plain, connect_timeout=5) as con:
            con.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        pytest.fail(f"{ENV_VAR}={url} is set but the server does not answer: {exc}")
    return url


@pytest.fixture
def postgres() -> str:
    """Fixture form of :func:`postgres_url`."""
    return postgres_url()


def unique_study(prefix: str = "test") -> str:
    """A study name no other test (or earlier run on the same server) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
