"""Real headless Chromium (Debian's `chromium`): the page's DOM after load, its console
messages, and screenshots.

Chromium started with `--enable-logging=stderr` writes every console message of the page
(errors, warnings, CSP violations, uncaught exceptions) to stderr as `INFO:CONSOLE` lines,
which is all the console a static page needs; no DevTools client is involved.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

REQUIRE_ENV = "AUDIENCES_REQUIRE_CHROMIUM"


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    message = "Chromium is not installed (apt-get install chromium; .ci/run does)"
    if os.environ.get(REQUIRE_ENV):
        pytest.fail(message)
    pytest.skip(message)


def _command(profile: Path, *args: str) -> list[str]:
    command = [
        chromium(),
        "--headless",
        "--disable-gpu",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--enable-logging=stderr",
        "--v=0",
        f"--user-data-dir={profile}",
    ]
    if os.geteuid() == 0:
        command.append("--no-sandbox")  # Chromium refuses to sandbox as root
    return [*command, *args]


@dataclass
class Loaded:
    dom: str
    console: list[str]


def load(page: Path, profile: Path) -> Loaded:
    done = subprocess.run(
        _command(profile, "--dump-dom", page.resolve().as_uri()),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return Loaded(done.stdout, console)


def screenshot(page: Path, out: Path, profile: Path, size: str = "1360,4200") -> None:
    subprocess.run(
        _command(
            profile,
            f"--screenshot={out.resolve()}",
            f"--window-size={size}",
            "--hide-scrollbars",
            page.resolve().as_uri(),
        ),
        capture_output=True,
        timeout=120,
        check=True,
    )


class Elements(HTMLParser):
    """Every element of a DOM as (tag, attributes, the text inside it)."""

    def __init__(self, dom: str):
        super().__init__()
        self.found: list[tuple[str, dict[str, str], list[str]]] = []
        self._open: list[int] = []
        self.feed(dom)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, {k: v or "" for k, v in attrs}, []))
        if tag not in ("line", "polyline", "rect", "meta", "br", "i", "circle"):
            self._open.append(len(self.found) - 1)

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            index = self._open.pop()
            if self.found[index][0] == tag:
                break

    def handle_data(self, data: str) -> None:
        if data.strip():
            for index in self._open:  # text belongs to every enclosing element
                self.found[index][2].append(data.strip())

    def select(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [
            a
            for t, a, _ in self.found
            if t == tag
            and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]

    def texts(self, tag: str, css_class: str) -> list[str]:
        return [
            " ".join(text)
            for t, a, text in self.found
            if t == tag and css_class in a.get("class", "").split()
        ]
