"""tests/postgres_server.py: with AUDIENCES_TEST_POSTGRES_PORT set, a session uses that
server instead of starting its own (make mutate shares one across mutants)."""

from __future__ import annotations

import pytest

from tests import postgres_server


def test_a_shared_port_is_used_and_no_server_is_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(postgres_server.SHARED_PORT_VARIABLE, "54329")
    # Starting one would need initdb: make its lookup fail loudly instead.
    monkeypatch.setattr(postgres_server, "_pg_bin", lambda: pytest.fail("started one"))
    with postgres_server.running_server() as env:
        assert env == {
            "PGHOST": "127.0.0.1",
            "PGPORT": "54329",
            "PGUSER": "postgres",
            "PGPASSWORD": "",
            "PGDATABASE": "postgres",
        }
