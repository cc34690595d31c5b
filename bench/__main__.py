"""`make bench`: sign-in and search measured beside raw baselines, in one run.

Stands the service up as an operator would (PostgreSQL, production settings,
its own process), pinned to one core while this load generator and the
database use the others, and prints ratios against baselines measured in the
same run:

- sign-in: logins/s at 8 clients against the hash pool's limit (its threads,
  bounded by the service's cores, times one thread's argon2 verifies/s with
  the service's parameters); a signed-in `{ me { id } }` while 32 clients
  sign in, against the same request on an idle service;
- search over BENCH_PATIENTS patients (100,000) of one practice: each kind of
  search through the API against the very statement the service sends for it,
  run straight through asyncpg.

Timings drift with the machine; compare ratios between runs, and read the
milliseconds as this machine's. Needs PostgreSQL (BENCH_DATABASE_URL, by
default postgres://postgres@127.0.0.1:5432/portal_bench, created when missing).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from argon2 import PasswordHasher

from graph.execution.planner import FieldPlan, Planner
from graph.patients.queries import page_asked
from graph.schema import build_schema
from models import Role
from portal.services.access import Viewer
from portal.services.patients import COMMON_GRAMS, list_patients
from portal.settings import Settings

PORTAL = Path(sys.executable).with_name("portal")
PRACTICE = "bench"
ADMIN = "admin@bench.example"
PASSWORD = "copper-lantern-meadow-2047"
PATIENTS = int(os.environ.get("BENCH_PATIENTS", "100000"))
STORM_CLIENTS = 32
# The sign-in ratio: slices of signing in, each between two slices of the
# hash alone on the same core (see `sign_in_against_hash`).
SIGN_IN_SLICES = 28
STORM_SLICE_SECONDS = 1.0
HASH_SLICE_SECONDS = 0.35
SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal_bench"
)

LOGIN = (
    "mutation($p: String!, $e: String!, $pw: String!) {"
    " login(practice: $p, email: $e, password: $pw) { __typename ... on LoginSuccess { token } } }"
)
ME = "query Me { me { id } }"
SEARCH = (
    "query Search($s: String) { patients(search: $s, first: 25) {"
    " totalCount edges { node { id firstName lastName email } } } }"
)
SEARCHES = {
    "no search": None,
    "name fragment": "thorn",
    "two letters": "jo",
    "one letter": "z",
    "two letters, in all": "ma",
    "common fragment": "ton",
    "email": "adena.lindson",
    "phone": "555 0142",
    "first and last name": "grace hald",
    "no match": "zzqxv",
}
# Names made of syllables: 600 first and 1,200 last names, so a fragment
# matches what it would in a real directory, from a handful of rows to many.
# fmt: off
FIRST_NAMES = [
    a + b
    for a in ("Ad", "Al", "Ann", "Bea", "Car", "Dor", "El", "Fran", "Gra", "Hel", "Ir", "Jo",
              "Kat", "Li", "Mar", "Nor", "Ol", "Pat", "Ros", "Sam", "Ter", "Ul", "Vi", "Wil",
              "Yv", "Zo", "Ber", "Cl", "Ed", "Gw")
    for b in ("a", "ice", "ena", "ie", "ol", "ton", "ric", "ia", "en", "us", "o", "ette",
              "and", "ine", "ey", "ard", "ora", "ian", "ith", "ace")
]
LAST_NAMES = [
    a + b
    for a in ("Abb", "Bark", "Cald", "Dunb", "Eld", "Fair", "Garn", "Hald", "Ivers", "Jenn",
              "Kell", "Lind", "Marsh", "Norr", "Osb", "Penn", "Quill", "Rad", "Stanf", "Thorn",
              "Upt", "Vaugh", "Whitf", "Yard", "Zell", "Ashf", "Brom", "Crest", "Dorr", "Ellw",
              "Fenw", "Gods", "Hartl", "Inw", "Kirkb", "Lowr", "Moll", "Nettl", "Oakl", "Pryc")
    for b in ("ott", "er", "well", "ar", "ridge", "field", "on", "ane", "en", "ings", "y",
              "ham", "sey", "ley", "ock", "wood", "ford", "man", "es", "ton", "by", "ish",
              "ick", "ow", "ard", "ell", "ing", "son", "ers", "ay")
]
# fmt: on
SEED_VERSION = 2


def percentile(samples: Sequence[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cores() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def pinned(command: list[str], core: int | None) -> list[str]:
    if core is None or shutil.which("taskset") is None:
        return command
    return ["taskset", "-c", str(core), *command]


# --- the database and the service ---------------------------------------------


def _database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


async def prepare_database(env: dict[str, str]) -> uuid.UUID:
    name = urlsplit(DATABASE_URL).path.lstrip("/")
    server = await asyncpg.connect(_database(DATABASE_URL, "postgres"))
    try:
        if not await server.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await server.execute(f'CREATE DATABASE "{name}"')
    finally:
        await server.close()
    subprocess.run([str(PORTAL), "migrate"], env=env, check=True, capture_output=True)  # noqa: S603
    connection = await asyncpg.connect(DATABASE_URL)
    try:
        practice_id = await connection.fetchval("SELECT id FROM practice WHERE slug = $1", PRACTICE)
        if practice_id is None:
            cli = [str(PORTAL)]
            subprocess.run(  # noqa: S603
                [*cli, "create-practice", "--name", "Bench Practice", "--slug", PRACTICE],
                env=env,
                check=True,
                capture_output=True,
            )
            subprocess.run(  # noqa: S603
                [*cli, "create-user", "--practice", PRACTICE, "--email", ADMIN, "--role", "ADMIN"],
                env={**env, "PORTAL_PASSWORD": PASSWORD},
                check=True,
                capture_output=True,
            )
            practice_id = await connection.fetchval(
                "SELECT id FROM practice WHERE slug = $1", PRACTICE
            )
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS bench_seed (version int, patients int)"
        )
        seeded = await connection.fetchrow("SELECT version, patients FROM bench_seed")
        if seeded is None or tuple(seeded) != (SEED_VERSION, PATIENTS):
            print(f"seeding {PATIENTS:,} patients …", flush=True)
            await connection.execute("DELETE FROM patient WHERE practice_id = $1", practice_id)
            await connection.execute(
                """
                INSERT INTO patient (id, practice_id, first_name, last_name, first_name_key,
                    last_name_key, date_of_birth, email, phone, phone_digits, created_at,
                    updated_at)
                SELECT gen_random_uuid(), $1, f, l, lower(f), lower(l),
                    date '1940-01-01' + (i * 7919) % 25000,
                    lower(f) || '.' || lower(l) || (i % 100) || '@mail.example',
                    '+1 (555) ' || lpad((i % 10000)::text, 4, '0'),
                    '1555' || lpad((i % 10000)::text, 4, '0'), now(), now()
                FROM generate_series(1, $2) AS i,
                LATERAL (
                    SELECT ($3::text[])[1 + (i * 7919) % cardinality($3::text[])] AS f,
                        ($4::text[])[1 + (i::bigint * 104729) % cardinality($4::text[])] AS l
                ) AS n
                """,
                practice_id,
                PATIENTS,
                FIRST_NAMES,
                LAST_NAMES,
            )
            await connection.execute("DELETE FROM bench_seed")
            await connection.execute(
                "INSERT INTO bench_seed VALUES ($1, $2)", SEED_VERSION, PATIENTS
            )
        # As autovacuum keeps a live table: statistics and the visibility map.
        await connection.execute("VACUUM ANALYZE patient")
        # One account per client: parallel attempts on one account beyond its
        # lockout allowance are throttled, as they should be.
        await connection.execute(
            "INSERT INTO account (id, practice_id, email, role, password_hash, created_at,"
            " password_changed_at) SELECT gen_random_uuid(), practice_id,"
            " 'client' || n || '@bench.example', role, password_hash, now(), now()"
            " FROM account, generate_series(1, $2) AS n WHERE email = $1"
            " ON CONFLICT DO NOTHING",
            ADMIN,
            STORM_CLIENTS,
        )
        # Sign-in throttles of an earlier run must not count.
        await connection.execute("DELETE FROM throttle_counter")
        return uuid.UUID(str(practice_id))
    finally:
        await connection.close()


async def keep_database_off(core: int | None) -> int:
    """Moves the database's processes serving this benchmark off the
    service's core, as the issue's measurements have it (load and database on
    the other cores). Best effort: possible for a database on this machine run
    by this user (or by root). The number of processes moved."""
    if core is None or not hasattr(os, "sched_setaffinity"):
        return 0
    others = set(cores()) - {core}
    connection = await asyncpg.connect(DATABASE_URL)
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        )
    finally:
        await connection.close()
    moved = 0
    for row in rows:
        try:
            os.sched_setaffinity(row["pid"], others)
        except OSError:  # another user's process, gone already, or on another host
            continue
        moved += 1
    return moved


class Service:
    def __init__(self, env: dict[str, str], core: int | None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/graphql"
        self.log = tempfile.NamedTemporaryFile(prefix="bench-serve-", suffix=".log")  # noqa: SIM115
        command = [str(PORTAL), "serve", "--port", str(self.port)]
        self.process = subprocess.Popen(  # noqa: S603
            pinned(command, core), env=env, stdout=self.log, stderr=subprocess.STDOUT
        )

    async def ready(self, client: httpx.AsyncClient) -> None:
        for _ in range(200):
            try:
                if (await client.get(self.url.replace("/graphql", "/health"))).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
        raise SystemExit(f"the service did not start; see {self.log.name}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


# --- load ---------------------------------------------------------------------


async def timed(work: Awaitable[Any]) -> float:
    started = time.perf_counter()
    await work
    return (time.perf_counter() - started) * 1000


async def post(client: httpx.AsyncClient, url: str, query: str, token: str = "", **v: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.post(url, json={"query": query, "variables": v}, headers=headers)
    body = response.json()
    if response.status_code != 200 or "errors" in body:
        raise SystemExit(f"{response.status_code}: {body}")
    return body["data"]


async def sign_in(client: httpx.AsyncClient, url: str, email: str = ADMIN) -> str:
    data = await post(client, url, LOGIN, p=PRACTICE, e=email, pw=PASSWORD)
    if data["login"]["__typename"] != "LoginSuccess":
        raise SystemExit(f"sign-in failed: {data}")
    token: str = data["login"]["token"]
    return token


async def sign_in_storm(
    client: httpx.AsyncClient, url: str, clients: int, seconds: float
) -> tuple[int, float]:
    """Logins made by `clients` signing in again and again, and the seconds taken."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def one_client(number: int) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await sign_in(client, url, f"client{number}@bench.example")
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(one_client(n) for n in range(1, clients + 1)))
    return done, time.perf_counter() - started


async def probe(client: httpx.AsyncClient, url: str, token: str, seconds: float) -> list[float]:
    """`{ me { id } }` one after another, 20 a second."""
    samples = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        samples.append(await timed(post(client, url, ME, token)))
        await asyncio.sleep(0.05)
    return samples


class HashPace:
    """One thread's argon2 verifies with the service's parameters, on its
    core (this process moves there while it counts, then back)."""

    def __init__(self, settings: Settings, core: int | None) -> None:
        self.core = core if hasattr(os, "sched_setaffinity") else None
        self.hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        self.stored = self.hasher.hash(PASSWORD)

    def count(self, seconds: float) -> tuple[int, float]:
        """Verifies done in about `seconds`, and the seconds they took."""
        if self.core is not None:
            previous = os.sched_getaffinity(0)
            os.sched_setaffinity(0, {self.core})
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            self.hasher.verify(self.stored, PASSWORD)
            count += 1
        took = time.perf_counter() - started
        if self.core is not None:
            os.sched_setaffinity(0, previous)
        return count, took


class SignInFigures:
    """Sums of logins and of the hash's verifies, with their seconds."""

    def __init__(self) -> None:
        self.logins = self.verifies = 0
        self.login_seconds = self.verify_seconds = 0.0

    def add_logins(self, logins: int, seconds: float) -> None:
        self.logins += logins
        self.login_seconds += seconds

    def add_verifies(self, verifies: int, seconds: float) -> None:
        self.verifies += verifies
        self.verify_seconds += seconds

    @property
    def rate(self) -> float:
        return self.logins / self.login_seconds

    @property
    def single(self) -> float:
        return self.verifies / self.verify_seconds

    def ratio(self, hash_threads: int) -> float:
        return self.rate / (hash_threads * self.single)


async def sign_in_against_hash(
    client: httpx.AsyncClient, url: str, pace: HashPace, hash_threads: int
) -> tuple[SignInFigures, list[float]]:
    """Logins/s at 8 clients against the hash's own pace on the service's
    core. The machine's speed drifts by a tenth or more over a second or two
    (other tenants of the host), so one slice of each, however long, can
    land on different speeds: they alternate in short slices, every slice of
    signing in between two of the hash alone, and the ratio is of the sums.
    Also the ratio of each quarter of the run, to show the drift."""
    total, quarter, quarters = SignInFigures(), SignInFigures(), []
    verifies, seconds = pace.count(HASH_SLICE_SECONDS)
    for figures in (total, quarter):
        figures.add_verifies(verifies, seconds)
    for number in range(1, SIGN_IN_SLICES + 1):
        logins, login_seconds = await sign_in_storm(client, url, 8, STORM_SLICE_SECONDS)
        verifies, seconds = pace.count(HASH_SLICE_SECONDS)
        for figures in (total, quarter):
            figures.add_logins(logins, login_seconds)
            figures.add_verifies(verifies, seconds)
        if number % (SIGN_IN_SLICES // 4) == 0:
            quarters.append(quarter.ratio(hash_threads))
            # The hash slice that closed this quarter opens the next.
            quarter = SignInFigures()
            quarter.add_verifies(verifies, seconds)
    return total, quarters


# --- search's raw baseline ----------------------------------------------------


class Recorded(Exception):  # noqa: N818 - a signal
    """The page's statement, caught on its way to the database."""

    def __init__(self, text: str, args: tuple[Any, ...]) -> None:
        super().__init__(text)
        self.text, self.args = text, args


class Recorder:
    """A Reader that keeps the statement the service would send for a page
    (and reads the search statistics that choose it for real)."""

    dialect = "postgres"

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection

    async def fetch(self, sql: Any, *args: Any) -> list[Any]:
        if sql is COMMON_GRAMS:
            return list(await self.connection.fetch(sql.text, *args))
        raise Recorded(sql.text, args)

    async def execute(self, sql: Any, *args: Any) -> int:
        raise AssertionError("a search writes nothing")


def search_selection(settings: Settings) -> FieldPlan:
    """SEARCH as the service plans it: what it asks of a page."""
    planner = Planner(build_schema(settings)._schema, settings)  # type: ignore[attr-defined]
    prepared = planner.prepare(SEARCH)
    assert prepared is not None
    operation = prepared.operation(None)
    assert operation is not None
    variables = planner.variables(prepared, operation, {"s": "x"})
    assert variables is not None
    plan = planner.plan(prepared, operation, variables)
    assert plan is not None
    return plan.root.fields[0]


async def statement_of(
    connection: asyncpg.Connection,
    practice_id: uuid.UUID,
    search: str | None,
    selection: FieldPlan,
) -> tuple[str, tuple[Any, ...]]:
    """The very statement the service sends for this search (the session
    lookup it joins to it aside)."""
    viewer = Viewer(uuid.uuid4(), practice_id, Role.ADMIN, None, uuid.uuid4())
    columns, count, render, listing = page_asked(selection)
    try:
        await list_patients(
            viewer,
            search=search,
            first=25,
            after=None,
            columns=columns,
            count=count,
            render=render,
            listing=listing,
            reader=Recorder(connection),
        )
    except Recorded as recorded:
        return recorded.text, recorded.args
    raise AssertionError("no statement was sent")


async def search_figures(
    client: httpx.AsyncClient, url: str, token: str, practice_id: uuid.UUID, settings: Settings
) -> list[tuple[str, int, float, float]]:
    connection = await asyncpg.connect(DATABASE_URL)
    figures = []
    selection = search_selection(settings)
    try:
        for label, search in SEARCHES.items():
            text, args = await statement_of(connection, practice_id, search, selection)
            rows = await connection.fetch(text, *args)
            api, raw = [], []
            for _ in range(5):  # warm both: plans, caches
                await post(client, url, SEARCH, token, s=search)
            for _ in range(40):
                api.append(await timed(post(client, url, SEARCH, token, s=search)))
                raw.append(await timed(connection.fetch(text, *args)))
            total = int(rows[0]["total_count"] or 0) if rows else 0
            figures.append((label, total, statistics.median(api), statistics.median(raw)))
    finally:
        await connection.close()
    return figures


# --- the run --------------------------------------------------------------------


async def main() -> None:
    available = cores()
    server_core = available[0] if len(available) > 1 else None
    if server_core is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(available[1:]))  # the load stays off the service's core
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "DATABASE_URL"))}
    env.update(
        DATABASE_URL=DATABASE_URL,
        PORTAL_ENV="production",
        PORTAL_SECRET_KEY=secrets.token_urlsafe(40),
        PORTAL_BASE_URL="https://portal.example.org",
        PORTAL_MAIL_WORKER="off",
    )
    settings = Settings.from_env(env)
    practice_id = await prepare_database(env)
    service = Service(env, server_core)
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    try:
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            await service.ready(client)
            token = await sign_in(client, service.url)
            hash_threads = settings.password_hash_threads or (
                1 if server_core is not None else len(available)
            )
            await sign_in_storm(client, service.url, 8, 1)  # warm
            database_moved = await keep_database_off(server_core)
            sign_ins, quarters = await sign_in_against_hash(
                client, service.url, HashPace(settings, server_core), hash_threads
            )
            await keep_database_off(server_core)  # connections the pool opened since
            idle = await probe(client, service.url, token, 3)
            storm = asyncio.create_task(sign_in_storm(client, service.url, STORM_CLIENTS, SECONDS))
            busy = await probe(client, service.url, token, SECONDS - 1)
            await storm
            searches = await search_figures(client, service.url, token, practice_id, settings)
    finally:
        service.stop()

    print()
    print("sign-in (argon2 as in production)")
    print(f"  one thread's verifies/s          {sign_ins.single:8.1f}")
    print(f"  hash threads (bounded by cores)  {hash_threads:8d}")
    if server_core is not None:
        print(f"  database processes moved off the service's core: {database_moved}")
    ratio = sign_ins.ratio(hash_threads)
    print(f"  logins/s at 8 clients            {sign_ins.rate:8.1f}   {ratio:5.2f}x the hash limit")
    print(f"    (by quarter of the run: {', '.join(f'{q:.2f}' for q in quarters)})")
    print(
        f"  {{ me {{ id }} }} p50 / p99 idle      {statistics.median(idle):6.1f} / "
        f"{percentile(idle, 0.99):6.1f} ms"
    )
    busy_p99, idle_p99 = percentile(busy, 0.99), percentile(idle, 0.99)
    print(
        f"  … during 32 clients signing in   {statistics.median(busy):6.1f} / "
        f"{busy_p99:6.1f} ms   p99 {busy_p99 / idle_p99:5.2f}x idle"
    )
    print()
    print(f"search over {PATIENTS:,} patients: p50 through the API vs its own statement raw")
    print(f"  {'search':22} {'matches':>8} {'API ms':>8} {'raw ms':>8} {'API/raw':>8}")
    for label, total, api_ms, raw_ms in searches:
        print(f"  {label:22} {total:8,} {api_ms:8.1f} {raw_ms:8.1f} {api_ms / raw_ms:8.2f}")


if __name__ == "__main__":
    asyncio.run(main())
