"""HTTP for every download source: retries with exponential backoff and an on-disk cache.

Why not requests' own ``Retry``: it retries connection errors and status codes, but not a
transfer that drops halfway through the body, which is what flaky tile servers do. Here one
loop retries all three (connection errors, dropped or truncated bodies, 429/5xx answers),
waiting ``backoff_s``, ``2·backoff_s``, ``4·backoff_s``... between attempts.

The cache is keyed by the full request URL (query string included) and written through
:func:`geoalign.io.atomic.atomic_path`, and only once the whole body has arrived and passed the
caller's check, so a dropped connection never leaves a partial tile in it.

Time and size are bounded: each attempt waits at most ``settings.timeout_s`` for the server
between two reads, the whole fetch ends within ``settings.deadline_s`` (see :func:`time_limit`),
and an answer held in memory stops at ``settings.max_answer_bytes``.

Every failure the user can cause (offline, wrong URL, server error) ends as a
:class:`~geoalign.errors.DownloadError` whose message names the host and the reason.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping
from urllib.parse import urlsplit

import requests
import urllib3

from geoalign.errors import DownloadError
from geoalign.io.atomic import atomic_path
from geoalign.sources import settings

log = logging.getLogger(__name__)

#: Answers worth another attempt: rate limiting and server-side trouble.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: Answers meaning "nothing here" for tile servers: a hole in the coverage, not an error.
MISSING_STATUSES = frozenset({204, 404, 410})
#: Never wait longer than this between two attempts, whatever Retry-After says.
MAX_PAUSE_S = 60.0

_local = threading.local()
#: ``time.monotonic()`` by which the current fetch must end (``None``: no deadline).
_deadline: float | None = None


class ContentError(Exception):
    """Raised by a ``check`` callback: the body arrived whole but is not what was asked for.

    ``retry=True`` treats it like a dropped transfer (try again); otherwise it fails at once.
    """

    def __init__(self, message: str, *, retry: bool = False) -> None:
        super().__init__(message)
        self.retry = retry


@dataclass(frozen=True)
class Fetched:
    """One answer: ``content`` is ``None`` when the server says there is nothing (404/204)."""

    url: str
    content: bytes | None
    from_cache: bool


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Every request inside the block ends by ``seconds`` from now, retries and pauses included."""
    global _deadline
    saved = _deadline
    if seconds is not None:
        end = time.monotonic() + float(seconds)
        _deadline = end if saved is None else min(saved, end)
    try:
        yield
    finally:
        _deadline = saved


@contextlib.contextmanager
def limits(*, timeout_s: float | None = None, retries: int | None = None,
           deadline_s: float | None = None) -> Iterator[None]:
    """Within the block: ``settings.timeout_s`` / ``max_retries`` / ``deadline_s`` overridden by
    the values given (a command's --timeout, --retries, --deadline), the deadline counting from
    now. Restored afterwards."""
    saved = (settings.timeout_s, settings.max_retries, settings.deadline_s)
    if timeout_s is not None:
        settings.timeout_s = float(timeout_s)
    if retries is not None:
        settings.max_retries = int(retries)
    if deadline_s is not None:
        settings.deadline_s = float(deadline_s)
    try:
        with time_limit(settings.deadline_s):
            yield
    finally:
        settings.timeout_s, settings.max_retries, settings.deadline_s = saved


def remaining_s() -> float | None:
    """Seconds left before the deadline (``None`` when there is none)."""
    return None if _deadline is None else _deadline - time.monotonic()


def attempt_timeout_s() -> float:
    """The timeout of the next attempt: ``settings.timeout_s``, less when the deadline is closer."""
    left = remaining_s()
    timeout = float(settings.timeout_s)
    return timeout if left is None else max(0.05, min(timeout, left))


class DeadlineExceeded(Exception):
    """The fetch's deadline passed (not retried)."""


class TooLarge(Exception):
    """An answer is bigger than ``settings.max_answer_bytes`` (not retried)."""


def read_body(response: requests.Response) -> bytes:
    """The body of a streamed response, read chunk by chunk so that neither a server dripping
    bytes past the deadline nor an endless answer can hold the fetch or fill the memory."""
    limit = int(settings.max_answer_bytes)
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"its answer is {int(declared) / 2**20:.0f} MiB")
    chunks, n_bytes = [], 0
    for chunk in _arriving(response):
        n_bytes += len(chunk)
        if n_bytes > limit:
            raise TooLarge(f"its answer exceeds {limit / 2**20:.0f} MiB")
        left = remaining_s()
        if left is not None and left <= 0:
            raise DeadlineExceeded()
        chunks.append(chunk)
    return b"".join(chunks)


def _arriving(response: requests.Response, chunk_bytes: int = 1 << 16) -> Iterator[bytes]:
    """The body as it arrives: each read returns what is there (``iter_content`` waits for a
    whole chunk, so a server dripping a byte at a time would hold it past any deadline)."""
    raw = response.raw
    if not hasattr(raw, "read1"):
        yield from response.iter_content(chunk_size=chunk_bytes)
        return
    try:
        while True:
            chunk = raw.read1(chunk_bytes, decode_content=True)
            if not chunk:
                return
            yield chunk
    except (urllib3.exceptions.ProtocolError, urllib3.exceptions.DecodeError) as err:
        raise requests.exceptions.ChunkedEncodingError(err) from None
    except urllib3.exceptions.ReadTimeoutError as err:
        raise requests.exceptions.ConnectionError(err) from None


def bounded_body_hook(response: requests.Response, *args, **kwargs) -> requests.Response:
    """A requests response hook reading the body through :func:`read_body` (for libraries such
    as osmnx that make their own requests); errors become :class:`DownloadError`."""
    host = urlsplit(response.url).netloc or response.url
    try:
        body = read_body(response)
    except TooLarge as err:
        raise DownloadError(_too_large_message(host, str(err), response.url)) from None
    except DeadlineExceeded:
        raise DownloadError(_deadline_message(host, response.url)) from None
    response._content = body  # what ``response.content`` returns from here on
    response._content_consumed = True
    return response


def _too_large_message(host: str, what: str, url: str) -> str:
    return (f"{host}: {what}, more than geoalign holds in memory "
            f"({settings.max_answer_bytes / 2**20:.0f} MiB, "
            f"geoalign.sources.settings.max_answer_bytes); ask for a smaller --bbox ({url}).")


def _deadline_message(host: str, url: str) -> str:
    return (f"could not download from {host}: the fetch ran past its deadline of "
            f"{settings.deadline_s:g} s (--deadline) ({url}).")


def session() -> requests.Session:
    """A requests session per thread (sessions are not guaranteed thread-safe)."""
    sess = getattr(_local, "session", None)
    if sess is None or getattr(_local, "user_agent", None) != settings.user_agent:
        sess = requests.Session()
        sess.headers["User-Agent"] = settings.user_agent
        _local.session, _local.user_agent = sess, settings.user_agent
    return sess


def full_url(url: str, params: Mapping[str, object] | None = None) -> str:
    """The URL with its query string, as sent (also the cache key)."""
    if not params:
        return url
    return str(requests.Request("GET", url, params=dict(params)).prepare().url)


def cache_path(url: str, suffix: str | None = None) -> Path:
    """Where the answer to ``url`` is cached; the suffix (from the URL path by default) lets GDAL
    guess the format of cached vector files."""
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()
    if suffix is None:
        suffix = Path(urlsplit(url).path).suffix.lower()
        suffix = suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ".bin"
    return Path(settings.cache_folder) / "http" / digest[:2] / f"{digest}{suffix}"


def get(
    url: str,
    params: Mapping[str, object] | None = None,
    *,
    missing_ok: bool = False,
    check: Callable[[bytes], None] | None = None,
    use_cache: bool | None = None,
) -> Fetched:
    """GET ``url`` with retries, through the cache.

    ``missing_ok``: a 404/204/410 answer returns ``content=None`` instead of failing (a tile
    outside the server's coverage). ``check(body)`` may raise :class:`ContentError` to refuse a
    body (e.g. an image that does not decode); a refused body is never cached.
    """
    url = full_url(url, params)
    use_cache = settings.use_cache if use_cache is None else use_cache
    path = cache_path(url)
    if use_cache and path.is_file():
        return Fetched(url, path.read_bytes(), True)

    def attempt() -> bytes | None:
        with session().get(url, timeout=attempt_timeout_s(), stream=True) as response:
            if missing_ok and response.status_code in MISSING_STATUSES:
                _drain(response)
                return None
            _raise_for_status(response)
            body = read_body(response)
            _check_length(response, len(body))
        if check is not None:
            check(body)
        return body

    body = _with_retries(attempt, url)
    if body is not None and use_cache:
        with atomic_path(path) as tmp:
            tmp.write_bytes(body)
    return Fetched(url, body, False)


def download_file(url: str, *, suffix: str | None = None, use_cache: bool | None = None) -> Path:
    """Stream ``url`` to a file in the cache and return its path (for big downloads: the body
    never sits in memory whole). With ``use_cache=False`` the file is fetched again."""
    use_cache = settings.use_cache if use_cache is None else use_cache
    path = cache_path(url, suffix)
    if use_cache and path.is_file():
        return path

    def attempt() -> None:
        with session().get(url, timeout=attempt_timeout_s(), stream=True) as response:
            _raise_for_status(response)
            with atomic_path(path) as tmp:
                n_bytes = 0
                with open(tmp, "wb") as fh:
                    for chunk in response.iter_content(chunk_size=1 << 20):
                        fh.write(chunk)
                        n_bytes += len(chunk)
                        left = remaining_s()
                        if left is not None and left <= 0:
                            raise DeadlineExceeded()
                _check_length(response, n_bytes)

    _with_retries(attempt, url)
    return path


class _RetryableStatus(Exception):
    def __init__(self, response: requests.Response) -> None:
        super().__init__(f"HTTP {response.status_code} {response.reason}")
        self.status = response.status_code
        self.reason = response.reason
        self.retry_after_s = _retry_after_s(response)


class _Truncated(Exception):
    """The body is shorter than its Content-Length: the connection dropped mid-transfer."""


def _drain(response: requests.Response, max_bytes: int = 1 << 16) -> None:
    """Read a short error body, so that the connection closes cleanly (closing it with unread
    bytes resets it, which servers log as errors)."""
    with contextlib.suppress(requests.exceptions.RequestException, OSError):
        n_bytes = 0
        for chunk in response.iter_content(chunk_size=1 << 14):
            n_bytes += len(chunk)
            if n_bytes >= max_bytes:
                break


def _raise_for_status(response: requests.Response) -> None:
    if response.status_code in RETRY_STATUSES or response.status_code >= 400:
        _drain(response)
    if response.status_code in RETRY_STATUSES:
        raise _RetryableStatus(response)
    if response.status_code >= 400:
        host = urlsplit(response.url).netloc
        raise DownloadError(
            f"{host} answered HTTP {response.status_code} {response.reason} for {response.url}; "
            "check the source URL (and any API key it needs)."
        )


def _check_length(response: requests.Response, n_bytes: int) -> None:
    expected = response.headers.get("Content-Length")
    encoded = response.headers.get("Content-Encoding", "identity") != "identity"
    if expected is not None and expected.isdigit() and not encoded and int(expected) != n_bytes:
        raise _Truncated(f"got {n_bytes} of {expected} bytes")


def _retry_after_s(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.strip().isdigit() else None


def _with_retries(attempt: Callable[[], object], url: str):
    """Run ``attempt`` until it succeeds; on the last failure raise a clear DownloadError."""
    host = urlsplit(url).netloc or url
    n_attempts = 1 + max(0, int(settings.max_retries))
    pause_s = float(settings.backoff_s)
    failure = "no attempt made"
    for i in range(n_attempts):
        left = remaining_s()
        if left is not None and left <= 0:
            raise DownloadError(_deadline_message(host, url))
        try:
            return attempt()
        except DownloadError:
            raise
        except DeadlineExceeded:
            raise DownloadError(_deadline_message(host, url)) from None
        except TooLarge as err:
            raise DownloadError(_too_large_message(host, str(err), url)) from None
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                requests.exceptions.InvalidSchema) as err:
            raise DownloadError(f"{url}: not a valid URL ({_reason(err)}).") from None
        except ContentError as err:
            if not err.retry:
                raise DownloadError(f"{host}: {err} ({url}).") from None
            failure, wait_s = f"{err}", pause_s
        except _RetryableStatus as err:
            failure = f"answered HTTP {err.status} {err.reason}"
            wait_s = min(MAX_PAUSE_S, max(pause_s, err.retry_after_s or 0.0))
        except _Truncated as err:
            failure, wait_s = f"dropped the connection mid-transfer ({err})", pause_s
        except requests.exceptions.Timeout:
            failure, wait_s = f"did not answer within {settings.timeout_s:g} s", pause_s
            left = remaining_s()
            if left is not None and left <= 0.05:
                raise DownloadError(_deadline_message(host, url)) from None
        except requests.exceptions.RequestException as err:
            failure, wait_s = _reason(err), pause_s
        if i + 1 < n_attempts:
            left = remaining_s()
            if left is not None:
                wait_s = max(0.0, min(wait_s, left))
            log.info("%s %s; retrying in %.2f s (attempt %d of %d)", host, failure, wait_s,
                     i + 2, n_attempts)
            time.sleep(wait_s)
            pause_s *= 2.0
    raise DownloadError(
        f"could not download from {host}: {failure} (after {n_attempts} attempts, {url}); "
        "check the network connection and the source, or fetch from a local file: source."
    )


def _reason(err: Exception) -> str:
    """A short human reason out of requests' long nested exception texts."""
    text = str(err)
    for pattern, reason in (
        (r"Connection refused", "connection refused (is the server running? are you offline?)"),
        (r"Name or service not known|nodename nor servname|getaddrinfo failed|"
         r"Temporary failure in name resolution", "host name not found (are you offline?)"),
        (r"Network is unreachable", "network unreachable (are you offline?)"),
        (r"IncompleteRead|RemoteDisconnected|Connection broken|ChunkedEncodingError|"
         r"Connection aborted|Response ended prematurely",
         "dropped the connection mid-transfer"),
    ):
        if re.search(pattern, text) or re.search(pattern, type(err).__name__):
            return reason
    match = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if match:
        return match.group(1).strip()
    return text.splitlines()[0][:200] if text else type(err).__name__


def map_parallel(fn: Callable, items, *, max_workers: int | None = None):
    """``map(fn, items)`` on a few threads, yielding results in order with at most a few
    results waiting, so memory stays bounded however many tiles there are."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    workers = max(1, int(settings.max_workers if max_workers is None else max_workers))
    if workers == 1:
        yield from map(fn, items)
        return
    pending: deque = deque()
    items = iter(items)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="geoalign-fetch") as pool:
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
