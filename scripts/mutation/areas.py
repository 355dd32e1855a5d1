"""The mutation areas: which modules are mutated and which test subset judges them.

Each area has ITS OWN tests, so a mutant only pays for the tests that can see it and the
whole run fits in about 2.5 h on 2 cores (benchmarks/mutation.md). PostgreSQL tests
are left out by default: each mutant runs in a fresh pytest session, and starting a server
per mutant would dominate the run; the DuckDB variants exercise the same Python. An area
with PostgreSQL-only code (the loaders' COPY path) sets `postgres=True`: its subset's
PostgreSQL tests run on one server for the area.
"""

from __future__ import annotations

from dataclasses import dataclass

PYTEST_MARKERS = "not postgres"


@dataclass(frozen=True)
class PythonArea:
    name: str
    mutate: tuple[str, ...]  # mutmut `only_mutate` globs, relative to the project root
    tests: tuple[str, ...]  # pytest paths (or node ids) that judge this area
    # Run the subset's PostgreSQL tests too, on one server the runner starts for the
    # whole area (tests/postgres_server.py), not one per mutant's pytest session.
    postgres: bool = False
    # pytest-timeout per test: a mutant that deadlocks a test sleeps rather than spins,
    # so mutmut's CPU-time limit never ends it; this does (a failure, i.e. killed).
    test_timeout: int = 60
    # Survivors known to be equivalent, as SqlArea.equivalent: listed with their reason,
    # left out of the score; one a test kills stays killed.
    equivalent: tuple[PythonEquivalent, ...] = ()


@dataclass(frozen=True)
class PythonEquivalent:
    """A Python mutant that changes nothing a test could observe, declared with the
    reason. Matched by module and by the lines mutmut's diff removes and adds (stripped,
    one per line), not by mutmut's numbering, which shifts with any edit of the function:
    an edit of those lines drops the declaration, and the mutant is judged, and counted,
    again."""

    module: str  # as mutmut names it: scripts.alerts.webhook
    removed: tuple[str, ...]  # the original lines, stripped
    added: tuple[str, ...]  # the mutated lines, stripped
    reason: str

    def matches(self, name: str, diff: str) -> bool:
        lines = diff.splitlines()
        removed = tuple(
            line[1:].strip()
            for line in lines
            if line.startswith("-") and not line.startswith("---")
        )
        added = tuple(
            line[1:].strip()
            for line in lines
            if line.startswith("+") and not line.startswith("+++")
        )
        return (
            name.startswith(self.module + ".")
            and (removed, added) == (self.removed, self.added)
        )  # fmt: skip


@dataclass(frozen=True)
class EquivalentMutant:
    """A mutant that survives because it changes nothing a test could observe, declared
    with the reason. Matched by file, mutation and the original line's text (not its
    number), so an edit that moves the line keeps the declaration, and one that changes
    the line drops it: the mutant is then judged, and counted, again."""

    path: str
    line: str  # the original line, stripped
    description: str  # the mutation, as SqlMutant.description says it
    reason: str

    def matches(self, path: str, line: str, description: str) -> bool:
        return (path, line.strip(), description) == (
            self.path, self.line, self.description
        )  # fmt: skip


@dataclass(frozen=True)
class SqlArea:
    name: str
    files: tuple[str, ...]  # SQL files (globs) whose operators are swapped
    dbt: tuple[str, ...]  # the dbt command that judges them first (the unit tests)
    pytest: tuple[
        str, ...
    ]  # pytest paths that judge the survivors (the audience checks, or the area's own)
    # Survivors known to be equivalent: listed with their reason, left out of the score.
    # Only a mutant that survived every judge is matched; one a test kills stays killed.
    equivalent: tuple[EquivalentMutant, ...] = ()


def _alerts_equivalent(
    module: str, removed: str, added: tuple[str, ...], reason: str
) -> tuple[PythonEquivalent, ...]:
    """One declaration per mutation of the same original line, with one reason."""
    return tuple(
        PythonEquivalent(f"scripts.{module}", (removed,), (mutated,), reason)
        for mutated in added
    )


_POSTER = 'target=self._send, args=(body, answer), name="alert-post", daemon=True'
_POST_STATUS = "if status >= 300:"
_TITLE = '"text": {"type": "plain_text", "text": text.cut(self.title, 150)},'
_READ_STATE = 'return repeats.loads(path.read_text(encoding="utf-8"))'
_REBUILD = 'rebuild_command(str(other[0].get("unique_id", "?")), manifest)'
# The alert area's survivors of the whole run of 2026-12-07 (08:06-08:47 UTC) that no
# test can see, each with why; the others it left were killed by tests added after it.
ALERTS_EQUIVALENTS = (
    *_alerts_equivalent(
        "alerts.webhook",
        "self.unanswered = False",
        ("self.unanswered = None",),
        "read only as a truth value (`if self.unanswered`): None is false as False is",
    ),
    *_alerts_equivalent(
        "alerts.webhook",
        _POSTER,
        tuple(
            _POSTER.replace('name="alert-post", ', name)
            for name in (
                "name=None, ",
                "",
                'name="XXalert-postXX", ',
                'name="ALERT-POST", ',
            )
        ),
        "no code reads the poster thread's name (the tests find it by identity)",
    ),
    *_alerts_equivalent(
        "alerts.webhook",
        _POST_STATUS,
        ("if status > 300:", "if status >= 301:"),
        "300 never reaches this line: every 3xx returned in the redirect branch above",
    ),
    *_alerts_equivalent(
        "alerts.webhook",
        "self.url, json=body, timeout=self.timeout, allow_redirects=False",
        ("self.url, json=body, timeout=self.timeout, allow_redirects=None",),
        "requests follows redirects only when allow_redirects is true; None is not",
    ),
    *_alerts_equivalent(
        "alerts.message",
        _TITLE,
        (_TITLE.replace("150", "None"), _TITLE.replace("150", "151")),
        "every title is a cause's fixed text (under 60 characters, 70 with "
        '"Resolved: "), so neither limit cuts it',
    ),
    *_alerts_equivalent(
        "alerts.repeats",
        "if last is not None and repeat > timedelta(0) and last <= now < last + repeat:",
        (
            "if last is not None and repeat >= timedelta(0) and last <= now < last + "
            "repeat:",
        ),
        "with a repeat of 0 the window `last <= now < last + repeat` is empty, so the "
        "condition is false either way",
    ),
    *_alerts_equivalent(
        "alerts.repeats",
        'document = json.loads(text or "{}")',
        ('document = json.loads(text or "XX{}XX")',),
        "an empty state fails to parse as that text and is read as no open alerts, "
        "which is what {} gives",
    ),
    *_alerts_equivalent(
        "run.unreached_alerts",
        _READ_STATE,
        (_READ_STATE.replace('"utf-8"', "None"), _READ_STATE.replace("utf-8", "UTF-8")),
        "the state file is JSON that json.dumps wrote in ASCII (non-ASCII escaped), "
        "which every encoding reads the same",
    ),
    *_alerts_equivalent(
        "run.findings",
        'return (errors or _last_lines(step, limit) or [f"exit status {step.exit_code}"])[',
        (
            'return (errors or _last_lines(step, ) or [f"exit status {step.exit_code}"])[',
        ),
        "the lines are cut to their last `limit` right after, and _last_lines's default "
        "(3) is at least every limit passed (1 or 3): the same last lines",
    ),
    *_alerts_equivalent(
        "run.findings",
        _REBUILD,
        (
            _REBUILD.replace('"?"', "None"),
            _REBUILD.replace('"?"', '"XX?XX"'),
            _REBUILD.replace(', "?"', ", "),
        ),
        "a result without a unique_id gets `dbt build` whatever stands in for it: "
        "rebuild_command names a selector only for an id the manifest knows",
    ),
    *(
        PythonEquivalent(
            "scripts.run.findings",
            (sql,),
            (sql.upper(),),
            "SQL keywords and unquoted names are case-insensitive on DuckDB and "
            "PostgreSQL",
        )
        for sql in (
            '"select run_id, status, count_planned, count_sent, count_failed, "',
            '"order by started_at desc limit 1",',
            '"select audience_key, count(*), min(reason) from segment_sync.dead_letters "',
            '"select audience_key, count(*) from segment_sync.outbox "',
        )
    ),
)


PYTHON_AREAS: dict[str, PythonArea] = {
    area.name: area
    for area in (
        # The end-to-end version tests compile the real project (10-30 s each, 135 s in
        # all): a mutant of a function they reach would pay that each time. The same
        # rules are pinned without dbt (test_fingerprint_rules.py) and the commands on a
        # one-model project (test_versions_command.py, about a second per compile).
        PythonArea(
            "versions",
            ("scripts/versions/*",),
            (
                "tests/versions/test_fingerprint_rules.py",
                "tests/versions/test_versions_command.py",
            ),
        ),
        # Most of tests/receiver starts a `serve-webhooks` process per test (44 s a
        # pass, and every mutant of the server or the writer reaches them all). The
        # same answers are pinned in-process: a real server and writer on 127.0.0.1
        # (test_requests_in_process.py), the command run by click's runner with a real
        # SIGTERM (test_command_in_process.py), the writer and signatures directly.
        PythonArea(
            "receiver",
            ("scripts/receiver/*",),
            (
                *(
                    f"tests/receiver/test_{name}.py"
                    for name in (
                        "requests_in_process",
                        "command_in_process",
                        "durability",
                        "landing_counters",
                        "landing_line",
                        "landing_partial_write",
                        "landing_abandon",
                        "landing_group_commit",
                        "landing_names",
                        "landing_recovery",
                        "server_errors",
                        "server_status",
                        "signature_edges",
                    )
                ),
                *(
                    f"tests/receiver/test_signature_known_answers.py::test_verify__{name}"
                    for name in (
                        "accepts_the_openssl_known_answer",
                        "rejects_near_misses_of_the_known_answer",
                        "rejects_the_known_answer_under_another_timestamp",
                        "hex_case_does_not_matter",
                    )
                ),
            ),
            # The whole subset runs in about 2 s and no test in it takes over half a
            # second, so 20 s only ever ends a mutant that hangs a server or a drain
            # (a dozen of them, each of which cost a worker 60 s).
            test_timeout=20,
        ),
        # tests/segment_sync drives these modules through the real command and an HTTP
        # receiver (71 s a pass; nearly every test reaches the planner and the outbox, so
        # each mutant would pay most of it). The rules are pinned where they live, on a
        # real DuckDB file without the command (the *_rules.py files) and on plain
        # values (payloads, guard boundaries): 103 tests in about 5 s.
        PythonArea(
            "segment_sync",
            tuple(
                f"scripts/segment_sync/{name}.py"
                for name in ("plan", "guards", "payloads", "outbox")
            ),
            tuple(
                f"tests/segment_sync/test_{name}.py"
                for name in (
                    "plan_rules",
                    "outbox_rules",
                    "guard_rules",
                    "payload_rows",
                    "guard_limits",
                    "data_health_guard",
                    "future_as_of_guard",
                    "payloads",
                    "engage_payloads",
                )
            ),
        ),
        # tests/loaders (163 tests, 47 s a pass) drives every case through `audiences
        # load` into a DuckDB file, and nearly all of them reach inspect() and apply(): a
        # mutant there would pay the whole pass. The *_rules.py files pin the same rules
        # by calling files.py, bulk.py and orders.py directly on real files and a real
        # DuckDB (about 8 s for the three).
        PythonArea(
            "loaders",
            tuple(
                f"scripts/loaders/{name}.py"
                for name in ("files", "bulk", "orders", "disk_full")
            ),
            (
                *(
                    f"tests/loaders/test_{name}_rules.py"
                    for name in ("files", "bulk", "orders")
                ),
                # block-wise staging against its line-by-line definition, and the
                # re-sent keys' filter of the conflict checks (both direct, ~4 s)
                "tests/loaders/test_stage_lines_blocks.py",
                "tests/loaders/test_loaded_rows.py",
                # bulk.py's PostgreSQL path (COPY, the server's conflicts and upsert)
                "tests/loaders/test_bulk_rules_postgres.py",
                # the payload columns: filled on load, added to an older table (~11 s)
                "tests/loaders/test_payload_columns.py",
                # what counts as a full disk: directly, and on the real server, one
                # error that quotes the words and a tablespace that fills up
                "tests/loaders/test_disk_full.py::test_what_counts_as_a_full_disk",
                "tests/loaders/test_disk_full.py::"
                "test_a_postgresql_error_quoting_the_words_is_not_a_full_disk",
                "tests/loaders/test_disk_full.py::"
                "test_a_full_postgresql_disk_stops_the_run_and_a_rerun_loads_the_rest",
                "tests/loaders/test_disk_full.py::"
                "test_a_full_disk_while_upgrading_an_older_raw_table_stops_the_load_"
                "the_same_way",
            ),
            postgres=True,
        ),
        # What the operator hears at 3 a.m.: which findings of a tick become alerts, how
        # they merge, redact and post, when a lasting cause is posted again or resolved,
        # and what a tick that cannot reach the warehouse keeps for the next one. Judged
        # on plain values, a local webhook receiver, and the real `audiences run` with
        # `--no-build` over dbt artifacts the tests write, so no mutant pays for a dbt
        # build (about 30 s a pass).
        PythonArea(
            "alerts",
            (
                *(
                    f"scripts/alerts/{name}.py"
                    for name in ("message", "repeats", "webhook")
                ),
                "scripts/run/findings.py",
                "scripts/run/unreached_alerts.py",
            ),
            (
                "tests/alerts/test_findings_rules.py",
                "tests/alerts/test_message_rules.py",
                "tests/alerts/test_webhook_rules.py",
                "tests/alerts/test_alerts.py",
                "tests/alerts/test_alert_repeats.py",
                "tests/run/test_unreached_alerts.py",
            ),
            equivalent=ALERTS_EQUIVALENTS,
        ),
    )
}

AUDIENCE_CHECKS = ("tests/dbt/test_audiences_match_python.py",)
# `dbt build` runs a unit test only together with its model; `dbt test` runs them alone
# against the baseline warehouse the runner builds first.
UNIT_TESTS = ("test", "--select", "test_type:unit")

_DEDUPE = "models/intermediate/engagement/int_message_events_deduplicated.sql"
_PERSON_LOOKUP = "macros/people/person_by_identifiers.sql"
_WATERMARK = "where loaded_at > {{ newest_held }}"
# The dedupe reads the union's new rows twice (to rank them, and to join the winners back)
# with the same watermark. Either filter alone decides the output; the other saves work.
_DEDUPE_WATERMARK_REASON = (
    "the dedupe's other read of the union keeps the same watermark, and the winners join "
    "back on loaded_at, so the rows this filter lets through in addition (loaded at or "
    "before the newest held) never reach the output; only the scan grows"
)
INCREMENTAL_EQUIVALENTS = (
    EquivalentMutant(_DEDUPE, _WATERMARK, "`>` -> `>=`", _DEDUPE_WATERMARK_REASON),
    EquivalentMutant(
        _DEDUPE, _WATERMARK, f"dropped filter `{_WATERMARK}`", _DEDUPE_WATERMARK_REASON
    ),
    EquivalentMutant(
        "models/intermediate/people/int_identifier_combinations.sql",
        "and (keyed.last_seen_at is null or held.last_seen_at > keyed.last_seen_at)",
        "`>` -> `>=`",
        "when the held and the new sighting are equal, both pick the same value",
    ),
    EquivalentMutant(
        _PERSON_LOOKUP,
        "and person_id is not null",
        "dropped filter `and person_id is not null`",
        "an identifier without a person joins as a null person, which is what no match "
        "gives; int_identifiers_resolved has one row per identifier, so nothing fans out",
    ),
    EquivalentMutant(
        "macros/tests/unique_new_keys.sql",
        "where {{ written_at }} >= cast(",
        "`>=` -> `>`",
        "only a row stamped at the very microsecond of the mark differs; the mark is "
        "taken in Python before dbt starts, so no build's run stamp equals it",
    ),
)

_LIFT = "models/marts/reporting/rpt_audience_lift.sql"
_SPANS_ZERO = "when absolute_lift_ci_lower <= 0 and absolute_lift_ci_upper >= 0"
_EXACT_ZERO_REASON = (
    "the two differ only for an interval bound of exactly 0.0, which needs the "
    "difference of two rates to equal the root of two squared Wilson margins in "
    "floating point; counts of members do not give one"
)

SQL_AREAS: dict[str, SqlArea] = {
    area.name: area
    for area in (
        SqlArea(
            "audience_macros",
            ("macros/audiences/*.sql",),
            UNIT_TESTS,
            AUDIENCE_CHECKS,
        ),
        SqlArea(
            "ledger_identity_sync_models",
            (
                # the ledger
                "models/marts/audiences/fct_audience_memberships.sql",
                "models/marts/audiences/fct_audience_membership_changes.sql",
                # identity
                "models/intermediate/people/int_identifiers_observed.sql",
                "models/intermediate/people/int_identifiers_resolved.sql",
                # the sync
                "models/syncs/segment/*.sql",
            ),
            UNIT_TESTS,
            AUDIENCE_CHECKS,
        ),
        # The incremental event models, where a one-line slip loses or duplicates events
        # on the next tick only. Their unit tests (is_incremental overridden, `this` given)
        # judge the merge rules and kill every mutant of the models that is not
        # equivalent. A generic test macro has no unit test, so its mutants meet two real
        # ticks on the small warehouse (`audiences run`, incremental builds with the key
        # checks scoped and then not): about 70 s with the warehouse fixture. Nor has the
        # bound on the held rows an arrival is compared with (a unit test reads them
        # all): a held copy on the bound itself meets its worse copy. Left out:
        # test_identity_sightings.py (+11 s; the unit tests already kill what it would)
        # and test_incremental_and_as_of.py (about 60 s more on its own demo warehouse,
        # and it never scopes the key checks).
        SqlArea(
            "incremental_event_models",
            (
                "models/intermediate/engagement/int_message_events_deduplicated.sql",
                "models/intermediate/people/int_identifier_combinations.sql",
                # how the dedupe (and the orders) find each row's person
                _PERSON_LOOKUP,
                "macros/tests/unique_new_keys.sql",
                "macros/time/newest_loaded_at_held.sql",
                "macros/time/occurred_since_earliest_arrival.sql",
                # how the dedupe writes: the delete bounded by the earliest second
                "macros/incremental/get_incremental_delete_insert_from_second_sql.sql",
            ),
            UNIT_TESTS,
            (
                "tests/dbt/test_key_checks.py::"
                "test_a_tick_checks_the_keys_written_since_the_last_passing_check",
                # the held rows the dedupe compares arrivals with (unit tests read all)
                "tests/dbt/test_dedupe_already_landed.py",
            ),
            equivalent=INCREMENTAL_EQUIVALENTS,
        ),
        # The per-person summaries that fold in only what changed since their last build. A
        # slip there either keeps a wrong row (the tests compare every run with a full
        # refresh) or falls back to rebuilding everyone on every run, which no result
        # shows: the tests also check whose rows each run recomputed (summarised_at).
        # Unit tests never take the incremental path (no previous table), so the judge
        # is tests/dbt/test_people_summaries.py on copies of the small warehouse.
        SqlArea(
            "people_summaries",
            ("macros/people/summarised_per_person.sql",),
            UNIT_TESTS,
            ("tests/dbt/test_people_summaries.py",),
            equivalent=(
                EquivalentMutant(
                    "macros/people/summarised_per_person.sql",
                    "{{ last_summarised_at }} < {{ run_started_timestamp() }}",
                    "`<` -> `<=`",
                    "the two differ only when this run started at the very microsecond "
                    "of the previous build's start, which two dbt invocations cannot",
                ),
                EquivalentMutant(
                    "macros/people/summarised_per_person.sql",
                    "and previous_person_id is not null",
                    "dropped filter `and previous_person_id is not null`",
                    "a null among the people who lost an event matches no row: not "
                    "in the rebuild's `person_id in (...)`, nor in the merged rows' "
                    "join; its tombstone has no person and the post-hook deletes it",
                ),
            ),
        ),
        # The strategy that writes a whole-table query's result as its differences from
        # the held rows (dim_people, fct_orders, the per-person intermediates). A slip
        # either leaves a wrong row (the test compares with a full refresh) or writes
        # rows that did not change, which no result shows: the test also checks which
        # rows were written again. Unit tests never reach a strategy.
        SqlArea(
            "changed_rows_writes",
            ("macros/incremental/get_incremental_changed_rows_sql.sql",),
            UNIT_TESTS,
            (
                "tests/dbt/test_changed_rows.py::"
                "test_only_the_rows_that_differ_are_written",
            ),
        ),
        # The lift report: who converts within each audience's window, and the intervals
        # a reader trusts to say whether the audience works. A slip shows as a wrong
        # count in the report's unit test, or as intervals that no longer cover the true
        # lift 95 % of the time in the calibration on seeded cohorts, which renders the
        # macro through dbt and runs it on DuckDB (about 10 s).
        SqlArea(
            "lift",
            (
                "models/marts/reporting/rpt_audience_lift.sql",
                "macros/stats/audience_lift_statistics.sql",
            ),
            UNIT_TESTS,
            ("tests/dbt/test_lift_calibration.py",),
            equivalent=(
                EquivalentMutant(
                    _LIFT,
                    "where false",
                    "dropped filter `where false`",
                    "with no audience registered, the one all-null window row this "
                    "leaves joins no entry (an inner join on null keys)",
                ),
                *(
                    EquivalentMutant(_LIFT, _SPANS_ZERO, mutation, _EXACT_ZERO_REASON)
                    for mutation in ("`<=` -> `<`", "`>=` -> `>`")
                ),
            ),
        ),
    )
}

# What a mutant must score to pass; below it `make mutate` exits non-zero.
REQUIRED_SCORE = 0.85
