"""`audiences run --orders-settle-seconds`: the tick hands the operator's settle time to
`audiences load orders`, and without it the loader's own default (60 s) applies.

An orders CSV whose last line has no line break may be a row its writer has not
finished (tests/loaders/test_orders_being_written.py). Here the file last changed two
minutes ago (set with os.utime, never waited for): past the default, within 300 s.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from scripts.warehouse import connect
from tests.alerts.conftest import Tick
from tests.loaders.test_orders_being_written import FINISHED

# The loader tests' finished file, its last row without a line break.
ORDERS = FINISHED.rstrip(b"\n")


def _orders_loaded() -> int:
    with connect() as wh:
        if not wh.table_exists("raw_shop", "orders"):
            return 0
        return int(wh.scalar("select count(*) from raw_shop.orders"))


def test_the_tick_passes_its_settle_time_to_the_orders_loader(
    tick: Tick, tmp_path: Path
) -> None:
    landing = tmp_path / "landing" / "orders"
    landing.mkdir(parents=True)
    path = landing / "orders.csv"
    path.write_bytes(ORDERS)
    two_minutes_ago = time.time() - 120
    os.utime(path, (two_minutes_ago, two_minutes_ago))

    waited = tick.run(
        "--orders", str(landing), "--orders-settle-seconds", "300",
        "--no-build", "--no-sync",
    )  # fmt: skip

    assert waited.code == 0, waited.output + waited.stderr
    assert "--settle-seconds 300" in waited.output  # the step as the tick ran it
    assert f"not loaded yet: {path}" in waited.output + waited.stderr
    assert _orders_loaded() == 0

    # The environment variable a scheduler sets says the same.
    tick.env["AUDIENCES_ORDERS_SETTLE_SECONDS"] = "300"
    again = tick.run("--orders", str(landing), "--no-build", "--no-sync")
    assert again.code == 0, again.output + again.stderr
    assert _orders_loaded() == 0

    # Without it, the loader's default: settled for two minutes, the file loads.
    del tick.env["AUDIENCES_ORDERS_SETTLE_SECONDS"]
    loaded = tick.run("--orders", str(landing), "--no-build", "--no-sync")
    assert loaded.code == 0, loaded.output + loaded.stderr
    assert "--settle-seconds" not in loaded.output
    assert _orders_loaded() == 2


def test_the_settle_time_reaches_the_loader_exactly_and_nan_or_inf_is_refused() -> None:
    from click.testing import CliRunner

    from scripts.loaders.command import orders_command
    from scripts.run.command import _settle_args, run

    # Not rounded on the way (`:g` made 86400.25 "86400.2" and 1234567 "1.23457e+06").
    for seconds in (0.0, 86400.25, 1234567.0, 1e-05):
        option, text = _settle_args(seconds)
        assert option == "--settle-seconds"
        assert float(text) == seconds
    assert _settle_args(None) == []
    # A wait of nan seconds compares false with every age: no wait at all. One of inf
    # never ends: the files would never load, and no error would say why.
    for value in ("nan", "inf"):
        for command, args in (
            (run, ["--orders-settle-seconds", value]),
            (orders_command, ["--settle-seconds", value, str(Path.cwd())]),
        ):
            refused = CliRunner().invoke(command, args)
            assert refused.exit_code == 2, refused.output
            assert f"{value} is not a number of seconds" in refused.output
