"""API intake: 4 concurrent clients × 1,000 Open311 POSTs over real HTTP to the ASGI routes served by
uvicorn in this process (a thread), the clients threads with a kept-alive ``http.client`` connection each
in a process of their own (as the hotline's system is another machine; the standard library's client
costs a third of ``requests``' CPU per POST, and on one 2-core machine the clients' CPU is taken from
the server's), on a scratch copy of the store
(bench/scratch.py). Every POST carries its own work-order number; then 200 of them are sent again.

Figures: requests/s over the 4,000 first POSTs, p50/p95 latency (ms), the server's CPU per POST (ms),
reports per transaction (group commit, decision 0035; ``OPEN311_GROUP_COMMIT=0``: one each), errors, requests lost (a
success answer whose event is not in the store, or no success at all), duplicated (events beyond one
per work-order number) and retries answered with another id.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import socket
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from urllib.parse import urlencode, urlsplit

import numpy as np
import requests
import uvicorn
from sqlalchemy import func, select
from starlette.applications import Starlette

from api.open311 import group_commit, make_routes
from bench.contention import _places
from bench.probe import cpu_probe_ms, machine_busy_s
from bench.scratch import store_copy
from db.engine import make_engine
from db.models import AdminUnit, AuditLog, Event
from db.uow import UnitOfWork
from services import api_keys, clock

CLIENTS = 4
#: 1,000 by default; ``BENCH_API_PER_CLIENT`` for a shorter run (the figures name the count).
PER_CLIENT = int(os.environ.get("BENCH_API_PER_CLIENT", "1000"))
RETRIES = 200
GET_ROUNDS = 20
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def bench_api(url: str) -> dict[str, float]:
    with store_copy(url, "api") as copy:
        return _api_on(copy)


def _api_on(url: str) -> dict[str, float]:
    engine = make_engine(url)
    with engine.connect() as conn:
        root = conn.execute(select(AdminUnit.code).where(AdminUnit.parent_id.is_(None))).scalars().first()
    _, key = api_keys.create_key(
        UnitOfWork(engine),
        actor=None,
        channel="bench",
        label="bench",
        area_code=root,
        now=clock.now(),
        per_minute=100_000,
    )
    places = _places(engine, 500)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            Starlette(routes=make_routes(lambda: engine)), host="127.0.0.1", port=port, log_level="error"
        )
    )
    serving = threading.Thread(target=server.run, daemon=True)
    serving.start()
    while not server.started:
        time.sleep(0.02)
    base = f"http://127.0.0.1:{port}/open311/v2/requests.json"
    run = time.strftime("%H%M%S")
    # The clients are another process (as a hotline system is): the server keeps its interpreter to itself.
    group = group_commit(engine)
    # Counted afterwards: this run's trail rows only (a reused PostgreSQL store keeps earlier runs').
    with engine.connect() as conn:
        trail_from = conn.execute(select(func.coalesce(func.max(AuditLog.id), 0))).scalar_one()
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pool.submit(int, 0).result()  # the child started (its start-up is not the server's CPU)
        batches = (group.batches, group.reports) if group else (0, 0)
        probes = [cpu_probe_ms()]  # the machine's speed, the server idle (bench.probe)
        cpu, busy, t0 = time.process_time(), machine_busy_s(), time.perf_counter()
        answers, latencies, failed, elapsed, client_cpu = pool.submit(
            _clients, base, key, places, run, CLIENTS, PER_CLIENT
        ).result()
        cpu, busy, window = time.process_time() - cpu, machine_busy_s() - busy, time.perf_counter() - t0
        probes.append(cpu_probe_ms())
        if group:
            batches = (group.batches - batches[0], group.reports - batches[1])
    errors = [failed]
    http = requests.Session()
    moved = 0
    for order in list(answers)[: min(RETRIES, len(answers))]:
        c, i = (int(x) for x in order.split("-")[1:])
        r = http.post(base, data=_form(key, places, order, c * PER_CLIENT + i), timeout=60)
        moved += r.status_code != 200 or r.json()[0]["service_request_id"] != answers[order]
    get_ms, listed = _township_reads(engine, base)
    server.should_exit = True
    serving.join(10)
    with engine.connect() as conn:
        stored = conn.execute(
            select(func.count())
            .select_from(AuditLog)
            .where(
                AuditLog.id > trail_from,
                AuditLog.actor_role == "api:bench",
                AuditLog.action == "event.report",
            )
        ).scalar_one()
        ids = {int(v) for v in answers.values()}
        found = (
            conn.execute(select(func.count()).select_from(Event).where(Event.id.in_(ids))).scalar_one()
            if ids
            else 0
        )
    sqlite = engine.dialect.name == "sqlite"
    engine.dispose()
    total = CLIENTS * PER_CLIENT
    # What else ran on the machine during the POSTs, as a share of its cores: its busy CPU less the
    # server's and the clients'. SQLite only: there the store works inside the server; a PostgreSQL
    # server's backends would be counted as others.
    others = busy - cpu - client_cpu
    shares = {"api_machine_other_cpu_share": round(max(others, 0.0) / ((os.cpu_count() or 1) * window), 2)}
    return ({} if not sqlite else shares) | {
        "api_post_count": total,
        "api_post_requests_per_s": round(total / elapsed, 1),
        "api_post_p50_ms": round(float(np.percentile(latencies, 50)), 1),
        "api_post_p95_ms": round(float(np.percentile(latencies, 95)), 1),
        # the server's CPU per POST (this process: uvicorn and its threads; the clients are another)
        "api_post_server_cpu_per_request_ms": round(cpu * 1000 / total, 2),
        # the clients' CPU per POST (their process): on one 2-core machine both shares come from the same
        # two cores, so requests/s ≤ 2,000 ms ÷ (server + clients + the store's own) per POST
        "api_post_client_cpu_per_request_ms": round(client_cpu * 1000 / total, 2),
        # reports per transaction when the POSTs are written together (decision 0035; 0: one each)
        "api_post_reports_per_batch": round(batches[1] / batches[0], 2) if batches[0] else 0,
        # the machine's speed just before and just after the POSTs (bench.probe; lower is faster)
        "api_cpu_probe_before_ms": probes[0],
        "api_cpu_probe_after_ms": probes[1],
        "api_post_errors": errors[0],
        "api_post_lost": total - found,
        "api_post_duplicated": stored - len(set(answers.values())),
        "api_retry_other_id": moved,
        "api_get_township_30d_p50_ms": round(float(np.percentile(get_ms, 50)), 1),
        "api_get_township_30d_p95_ms": round(float(np.percentile(get_ms, 95)), 1),
        "api_get_township_30d_rows_count": listed,
    }


def _form(key: str, places: list, order: str, i: int) -> dict[str, str]:
    lon, lat = places[i % len(places)]
    return {
        "api_key": key,
        "service_code": "urban",
        "lat": str(lat),
        "long": str(lon),
        "description": f"接口压测 {order}",
        "attribute[work_order]": order,
    }


def _clients(
    base: str, key: str, places: list, run: str, clients: int, per_client: int
) -> tuple[dict[str, str], list[float], int, float, float]:
    """``clients`` threads × ``per_client`` POSTs (in the child process): the answers by work order, the
    latencies (ms), the failures, the seconds the whole took and the CPU seconds the clients used."""
    parts = urlsplit(base)
    host, port, path = parts.hostname, parts.port, parts.path
    answers: dict[str, str] = {}
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def client(c: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=60)
        for i in range(per_client):
            order = f"B{run}-{c}-{i}"
            body = urlencode(_form(key, places, order, c * per_client + i))
            t0 = time.perf_counter()
            try:
                conn.request("POST", path, body=body, headers=FORM)
                r = conn.getresponse()
                data, ok = r.read(), r.status == 200
            except (OSError, http.client.HTTPException):
                conn.close()  # the next request opens a new connection
                ok = False
            dt = (time.perf_counter() - t0) * 1000
            with lock:
                latencies.append(dt)
                if ok:
                    answers[order] = json.loads(data)[0]["service_request_id"]
                else:
                    errors[0] += 1
        conn.close()

    t0, cpu = time.perf_counter(), time.process_time()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers, latencies, errors[0], time.perf_counter() - t0, time.process_time() - cpu


def _township_reads(engine, base: str, rounds: int = GET_ROUNDS) -> tuple[list[float], int]:
    """``GET requests.json`` for one township's last 30 days (a key scoped to the first township), as a
    channel syncing its work orders would ask, ``rounds`` times: the latencies and the rows answered."""
    from domain.vocabulary import AdminLevel

    with engine.connect() as conn:
        township = conn.execute(
            select(AdminUnit.code)
            .where(AdminUnit.level == AdminLevel.TOWNSHIP)
            .order_by(AdminUnit.id)
            .limit(1)
        ).scalar_one()
    _, key = api_keys.create_key(
        UnitOfWork(engine),
        actor=None,
        channel="bench_read",
        label="bench read",
        area_code=township,
        now=clock.now(),
        per_minute=100_000,
    )
    since = (clock.now() - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%S+08:00")
    http, times, rows = requests.Session(), [], 0
    for _ in range(rounds):
        t0 = time.perf_counter()
        r = http.get(base, params={"api_key": key, "start_date": since}, timeout=60)
        times.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
        rows = len(r.json())
    return times, rows
