"""A polite Customer.io App API client (facts and sources: docs/customerio-app-api.md).

Bearer key from the environment, US/EU hosts, a request-rate ceiling that also covers
retries (the 10 requests/s limit is per workspace and shared with every other user of
the key), and urllib3's Retry for 429/5xx/connection errors with exponential backoff,
jitter and `Retry-After`. Error messages name the URL path and status, never the key.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Callable
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from scripts.ratelimit import RateLimiter
from scripts.secret_keys import describe_odd_character, odd_character_at

KEY_ENV = "CIO_APP_API_KEY"
BASE_URL_ENV = "CIO_API_BASE_URL"
REGION_BASE_URLS = {"us": "https://api.customer.io", "eu": "https://api-eu.customer.io"}
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRY_AFTER_MAX_SECONDS = 300.0


class ApiError(Exception):
    """The API could not be used; the message is safe to print (no key, no headers)."""


def base_url_for(region: str) -> str:
    """The App API host for a region; $CIO_API_BASE_URL wins (tests, proxies)."""
    return (os.environ.get(BASE_URL_ENV) or REGION_BASE_URLS[region]).rstrip("/")


def api_key_from_env() -> str:
    key = os.environ.get(KEY_ENV, "").strip()
    if not key:
        raise ApiError(
            f"{KEY_ENV} is not set: create an App API key under Account Settings > "
            "API Credentials > App API keys in Customer.io and export it"
        )
    # The HTTP library would refuse anything else in a header with an exception that
    # quotes the whole header, key included.
    odd = odd_character_at(key)
    if odd is not None:
        raise ApiError(describe_odd_character(KEY_ENV, key, odd))
    return key


class _PoliteRetry(Retry):
    """urllib3 Retry plus backoff from the first retry, a token per retry, a report."""

    def __init__(
        self,
        *args: Any,
        limiter: RateLimiter | None = None,
        on_retry: Callable[[int, str], None] | None = None,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.limiter = limiter
        self.on_retry = on_retry

    def new(self, **kwargs: Any) -> _PoliteRetry:
        retry = super().new(**kwargs)
        retry.limiter = self.limiter
        retry.on_retry = self.on_retry
        return retry

    def get_backoff_time(self) -> float:
        # urllib3 retries the first failure at once; a 429 deserves a pause already.
        failures = len(self.history)
        if failures == 0:
            return 0.0
        value = self.backoff_factor * 2 ** (failures - 1)
        value += random.uniform(0, self.backoff_jitter)
        return min(self.backoff_max, value)

    def increment(self, *args: Any, **kwargs: Any) -> _PoliteRetry:
        retry = super().increment(*args, **kwargs)
        if self.on_retry is not None and retry.history:
            last = retry.history[-1]
            reason = f"HTTP {last.status}" if last.status else type(last.error).__name__
            self.on_retry(len(retry.history), reason)
        return retry

    def sleep(self, response: Any = None) -> None:
        super().sleep(response)
        if self.limiter is not None:
            self.limiter.acquire()


class AppApiClient:
    """GET JSON from the App API with auth, rate ceiling and retries."""

    def __init__(
        self,
        api_key: str,
        base_url: str,
        *,
        max_rps: float = 10.0,
        max_attempts: int = 8,
        backoff_seconds: float = 1.0,
        timeout: tuple[float, float] = (10.0, 60.0),
        on_retry: Callable[[int, str], None] | None = None,
    ):
        self.base_url = base_url
        self._api_key = api_key  # only to take it out of answers quoted in errors
        self.max_attempts = max_attempts
        self.timeout = timeout
        # Pace a little under the ceiling: jitter in the network must never land 11
        # requests inside one second at the server, which is where the limit counts.
        self.limiter = RateLimiter(max_rps * 0.97)
        self.retries = 0

        def count_retry(attempt: int, reason: str) -> None:
            self.retries += 1
            if on_retry is not None:
                on_retry(attempt, reason)

        retry = _PoliteRetry(
            total=max_attempts - 1,
            allowed_methods=frozenset({"GET"}),
            status_forcelist=RETRY_STATUSES,
            backoff_factor=backoff_seconds,
            backoff_jitter=backoff_seconds,
            backoff_max=60.0,
            retry_after_max=RETRY_AFTER_MAX_SECONDS,
            respect_retry_after_header=True,
            raise_on_status=False,
            limiter=self.limiter,
            on_retry=count_retry,
        )
        self.session = requests.Session()
        self.session.headers.update(
            {
                "Authorization": f"Bearer {api_key}",
                "Accept": "application/json",
                "User-Agent": "engagement-audiences (audiences load api)",
            }
        )
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)

    def close(self) -> None:
        self.session.close()

    def get_json(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        self.limiter.acquire()
        try:
            response = self.session.get(
                self.base_url + path, params=params, timeout=self.timeout
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise ApiError(
                f"gave up on GET {path} after {self.max_attempts} attempts: "
                f"{_cause(exc)}"
            ) from None
        except requests.RequestException as exc:
            # Anything else the HTTP library gives up on (a redirect loop at a proxy)
            # is one line, not a traceback.
            cause = f"{type(exc).__name__}: {str(exc).rstrip('.')}"
            raise ApiError(f"GET {path} failed: {self._quotable(cause)}") from None
        status = response.status_code
        if status in (401, 403):
            raise ApiError(
                f"the App API refused the key (HTTP {status}) on GET {path}: check "
                f"{KEY_ENV} and --region (a key of the other region also gets 401)"
            )
        if status in RETRY_STATUSES:
            raise ApiError(
                f"gave up on GET {path} after {self.max_attempts} attempts: "
                f"HTTP {status}"
            )
        if status != 200:
            raise ApiError(
                f"GET {path} answered HTTP {status}: {self._quotable(response.text)}"
            )
        try:
            document = response.json()
        except ValueError:
            raise ApiError(
                f"GET {path} answered 200 with a body that is not JSON"
            ) from None
        except RecursionError:
            # Python's JSON parser recurses once per level of nesting.
            raise ApiError(
                f"GET {path} answered 200 with JSON nested too deeply to read"
            ) from None
        if not isinstance(document, dict):
            raise ApiError(f"GET {path} answered 200 with JSON that is not an object")
        return document

    def _quotable(self, answer: str) -> str:
        """The start of an error answer, safe to print: a proxy or gateway that echoes
        the request's headers back would otherwise put the key in the message."""
        if self._api_key:
            # In any case: a gateway may quote it upper- or lower-cased.
            answer = re.sub(
                re.escape(self._api_key), f"<{KEY_ENV}>", answer, flags=re.IGNORECASE
            )
        return answer[:300].strip()


def _cause(exc: BaseException) -> str:
    """The underlying reason of a requests error (urllib3's MaxRetryError.reason)."""
    reason = exc.args[0] if exc.args else exc
    reason = getattr(reason, "reason", None) or reason
    return f"{type(reason).__name__}: {reason}"[:300]
