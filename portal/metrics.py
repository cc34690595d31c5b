"""Prometheus metrics (prometheus-client), in its multi-process mode so every
`portal serve` worker and a `portal deliver-mail` on the same host add up.

Low cardinality by design: no label ever holds a practice, an account, an
email or a patient. Operation names are chosen by clients, so only bounded
ones become labels: those of the trusted documents, and otherwise the first
`MAX_OPERATION_NAMES` well-formed names a process sees; the rest count as
"other".

Nothing here awaits or takes an asyncio lock on a request's path: a request
costs one counter increment and one histogram observation, in memory (or in
a memory-mapped file in multi-process mode).

Multi-process mode needs PROMETHEUS_MULTIPROC_DIR before any metric exists:
with PORTAL_METRICS_ADDRESS set, importing this module names one (a fresh
directory of the service's own, removed at exit, when the operator named
none) and removes files of processes no longer running. Worker processes
inherit the variable, so they all write to the same directory.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
from pathlib import Path

MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
OWNED_MARK = ".portal-owned"


def prepare_multiprocess_directory(environ: dict[str, str] | os._Environ[str]) -> Path | None:
    """Before anything imports prometheus_client: with PORTAL_METRICS_ADDRESS
    set, makes sure PROMETHEUS_MULTIPROC_DIR names a directory (a fresh one of
    the service's own when the operator named none) and clears what processes
    no longer running left in it. Returns the directory, or None when metrics are off."""
    if not environ.get("PORTAL_METRICS_ADDRESS", "").strip():
        return None
    named = environ.get(MULTIPROC_VARIABLE)
    if named:
        directory = Path(named)
        directory.mkdir(parents=True, exist_ok=True)
    else:
        directory = Path(tempfile.mkdtemp(prefix="portal-metrics-"))
        (directory / OWNED_MARK).write_text(str(os.getpid()))
        environ[MULTIPROC_VARIABLE] = str(directory)
    remove_stale_files(directory)
    return directory


_PID_OF_FILE = re.compile(r"_(\d+)\.db$")


def remove_stale_files(directory: Path) -> None:
    """Files of processes that have ended (a restart, a crash): their counts
    would otherwise be summed forever, and their live gauges too."""
    for path in directory.glob("*.db"):
        found = _PID_OF_FILE.search(path.name)
        if found is not None and not _running(int(found.group(1))):
            path.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_owned_directory(directory: Path | None) -> None:
    """At exit of the process that made it, the directory the service made
    for itself (never the operator's, nor by the workers that inherited it)."""
    if directory is None:
        return
    try:
        maker = (directory / OWNED_MARK).read_text()
    except OSError:
        return
    if maker == str(os.getpid()):
        shutil.rmtree(directory, ignore_errors=True)


_directory = prepare_multiprocess_directory(os.environ)
if _directory is not None:
    atexit.register(remove_owned_directory, _directory)

# Imported once the directory is known (see the module's docstring).
from prometheus_client import (  # noqa: E402
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
    start_http_server,
    values,
)

if os.environ.get(MULTIPROC_VARIABLE) and not getattr(values.ValueClass, "__name__", "").startswith(
    "MmapedValue"
):
    # prometheus_client was imported before the directory was named.
    values.ValueClass = values.get_value_class()

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "portal_graphql_requests",
    "GraphQL requests answered, by operation name and outcome.",
    ["operation", "outcome"],
)
REQUEST_SECONDS = Histogram(
    "portal_graphql_request_duration_seconds",
    "Time from a GraphQL request's arrival to its answer, by operation name.",
    ["operation"],
    buckets=LATENCY_BUCKETS,
)
SIGN_INS = Counter(
    "portal_sign_ins",
    "Sign-in attempts by result: ok, invalid, throttled, mfa_required, disabled.",
    ["result"],
)
INVITATIONS_SENT = Counter(
    "portal_invitations_sent", "Invitations written with their email, by kind.", ["kind"]
)
INVITATIONS_REDEEMED = Counter(
    "portal_invitations_redeemed", "Invitations redeemed by creating an account."
)
CODES = Counter(
    "portal_verification_codes",
    "Password-reset verification codes by event: sent, verified, failed.",
    ["event"],
)
DELIVERIES = Counter(
    "portal_mail_deliveries",
    "Mail delivery attempts by result: sent, retried, failed.",
    ["result"],
)
PASSWORD_HASH_SECONDS = Histogram(
    "portal_password_hash_seconds",
    "Time an argon2 hash or verification takes, queueing for the pool included.",
    ["operation"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
OUTBOX_BACKLOG = Gauge(
    "portal_outbox_backlog_messages",
    "Messages waiting in the outbox (pending, due or not).",
    multiprocess_mode="mostrecent",
)
OUTBOX_OLDEST_DUE_AGE = Gauge(
    "portal_outbox_oldest_due_age_seconds",
    "How long the oldest due message has been waiting to be sent (0: none due).",
    multiprocess_mode="mostrecent",
)
EVENT_LOOP_LAG = Gauge(
    "portal_event_loop_lag_seconds",
    "How late the event loop ran a timer lately (the largest of any process).",
    multiprocess_mode="livemax",
)
DB_POOL_IN_USE = Gauge(
    "portal_db_pool_connections_in_use",
    "Database connections checked out of the pools (PostgreSQL), all processes.",
    multiprocess_mode="livesum",
)

for result in ("ok", "invalid", "throttled", "mfa_required", "disabled"):
    SIGN_INS.labels(result)
for kind in ("patient", "staff"):
    INVITATIONS_SENT.labels(kind)
for event in ("sent", "verified", "failed"):
    CODES.labels(event)
for result in ("sent", "retried", "failed"):
    DELIVERIES.labels(result)
for operation in ("hash", "verify"):
    PASSWORD_HASH_SECONDS.labels(operation)

# --- operation names as labels --------------------------------------------------

MAX_OPERATION_NAMES = 100
OTHER = "other"
ANONYMOUS = "anonymous"
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,63}")
_trusted_names: set[str] = set()
# With the operator's manifest, nothing else runs in production: its names
# (and the web app's) are the only labels.
_only_trusted = False
_admitted: set[str] = set()
# (operation, outcome) -> (counter child, histogram child): no labels() lookup per request.
_children: dict[tuple[str, str], tuple[object, object]] = {}


def trust_operation_names(names: set[str], only: bool = False) -> None:
    """The operation names of trusted documents: always their own label;
    `only`: no other name is one."""
    global _only_trusted
    _trusted_names.update(name for name in names if _NAME.fullmatch(name))
    _only_trusted = _only_trusted or only


def operation_label(name: str | None) -> str:
    if not name:
        return ANONYMOUS
    if name in _trusted_names or name in _admitted:
        return name
    if len(_admitted) < MAX_OPERATION_NAMES and not _only_trusted and _NAME.fullmatch(name):
        _admitted.add(name)
        return name
    return OTHER


def observe_request(operation: str | None, outcome: str, seconds: float) -> None:
    key = (operation_label(operation), outcome)
    children = _children.get(key)
    if children is None:
        children = (REQUESTS.labels(*key), REQUEST_SECONDS.labels(key[0]))
        _children[key] = children
    children[0].inc()  # type: ignore[attr-defined]
    children[1].observe(seconds)  # type: ignore[attr-defined]


# --- the listener ------------------------------------------------------------------


def serve(address: tuple[str, int]) -> None:
    """The metrics listener, in a thread of this process: every process's
    numbers from the multi-process directory (this process's own without one)."""
    if os.environ.get(MULTIPROC_VARIABLE):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        start_http_server(address[1], addr=address[0], registry=registry)
    else:
        start_http_server(address[1], addr=address[0])


def process_ended() -> None:
    """A worker's live gauges stop counting once it ends."""
    if os.environ.get(MULTIPROC_VARIABLE):
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
