"""``make cluster N=2``: N app replicas behind nginx on one store, all local processes (decision 0031).

- N × ``streamlit run serve.py`` on ports BASE+1 … BASE+N, with one cookie secret (so every replica
  accepts the XSRF and login cookies any other one set), each beside a jobs runner; the runners elect
  one leader by lease (services/leader.py), the others stand by.
- nginx (Debian's package) on ``--port``: a browser sticks to one replica by the ``cockpit_node``
  cookie nginx sets on its first answer (a consistent hash of it picks the replica; open-source nginx
  has no ``sticky``), websockets upgraded, ``X-Forwarded-*`` set; when a replica dies its browsers'
  next connection (Streamlit reconnects by itself) goes to another, where the login cookie (a
  server-side session in the store) signs them in again.
- The store: ``DATABASE_URL`` (PostgreSQL for real replicas; the SQLite file works for a trial on one
  machine). Everything runs in the foreground until Ctrl-C; files go to ``data/cluster/``.

``python -m deploy.cluster --replicas 2 --port 8501`` is what ``make cluster`` runs; the browser test
(tests/e2e/test_cluster.py) starts the same with :func:`start`.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
NODE_COOKIE = "cockpit_node"

CONF = """\
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {dir}/tmp-body;
  proxy_temp_path {dir}/tmp-proxy;
  fastcgi_temp_path {dir}/tmp-fastcgi;
  uwsgi_temp_path {dir}/tmp-uwsgi;
  scgi_temp_path {dir}/tmp-scgi;
  # The replica of this browser: its cookie, or for a first visit this request's id (then set below).
  map $cookie_{cookie} $cockpit_node {{ "" $request_id; default $cookie_{cookie}; }}
  map $http_upgrade $connection_upgrade {{ default upgrade; "" close; }}
  upstream cockpit {{
    hash $cockpit_node consistent;
{servers}
  }}
  server {{
    listen {host}:{port};
    client_max_body_size 12m;
    location / {{
      proxy_pass http://cockpit;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_read_timeout 1d;
      proxy_next_upstream error timeout;
      proxy_connect_timeout 2s;
      add_header Set-Cookie "{cookie}=$cockpit_node; Path=/; HttpOnly; SameSite=Strict" always;
      add_header X-Cockpit-Replica $upstream_addr always;
    }}
  }}
}}
"""


@dataclass
class Cluster:
    """What :func:`start` started: the proxy's URL, each replica's URL and process, the runners."""

    url: str
    folder: Path
    replicas: dict[str, subprocess.Popen] = field(default_factory=dict)  # replica URL → process
    runners: list[subprocess.Popen] = field(default_factory=list)
    proxy: subprocess.Popen | None = None


def _wait_healthy(url: str, seconds: float = 90) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not become healthy in {seconds:.0f} s")


def _flags(host: str) -> tuple[str, ...]:
    return ("--server.address", host, "--server.headless", "true")


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )


@contextmanager
def start(
    store_url: str,
    replicas: int = 2,
    port: int = 8501,
    replica_ports: list[int] | None = None,
    host: str = "127.0.0.1",
) -> Iterator[Cluster]:
    """Start the replicas (on ``replica_ports``, default ``port`` + 101, + 102, …), their runners and
    nginx; stop them all on exit."""
    if not os.path.exists(NGINX):
        raise SystemExit("需要 nginx：apt-get install nginx（Debian 软件包）")
    folder = ROOT / "data" / "cluster" / str(port)
    folder.mkdir(parents=True, exist_ok=True)
    ports = replica_ports or [port + 100 + k for k in range(1, replicas + 1)]
    secret_file = folder / "cookie_secret"
    if not secret_file.exists():
        secret_file.write_text(secrets.token_hex(32))
    env = {
        **os.environ,
        "DATABASE_URL": store_url,
        "PYTHONPATH": str(ROOT),
        "STREAMLIT_SERVER_COOKIE_SECRET": secret_file.read_text().strip(),
    }
    cluster = Cluster(url=f"http://{host}:{port}", folder=folder)
    try:
        for p in ports[:replicas]:
            cluster.replicas[f"http://{host}:{p}"] = _spawn(
                [
                    sys.executable,
                    "-m",
                    "streamlit",
                    "run",
                    "serve.py",
                    "--server.port",
                    str(p),
                    *_flags(host),
                ],
                env,
                folder / f"replica-{p}.log",
            )
            cluster.runners.append(
                _spawn([sys.executable, "-m", "services.jobs"], env, folder / f"jobs-{p}.log")
            )
        for url in cluster.replicas:
            _wait_healthy(url)
        servers = "\n".join(
            f"    server {u.removeprefix('http://')} max_fails=1 fail_timeout=10s;" for u in cluster.replicas
        )
        conf = folder / "nginx.conf"
        conf.write_text(CONF.format(dir=folder, cookie=NODE_COOKIE, servers=servers, host=host, port=port))
        cluster.proxy = _spawn([NGINX, "-c", str(conf), "-p", str(folder)], env, folder / "nginx.log")
        _wait_healthy(cluster.url)
        yield cluster
    finally:
        procs = [*cluster.replicas.values(), *cluster.runners]
        if cluster.proxy is not None:
            procs.append(cluster.proxy)
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="多副本运行：N 个应用进程 + nginx（同一数据库）")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--port", type=int, default=8501, help="nginx 监听端口")
    parser.add_argument("--address", default="127.0.0.1")
    args = parser.parse_args(argv)
    from db.engine import database_url

    url = database_url()
    if url.startswith("sqlite"):
        print("提示：SQLite 仅适合单机试用；多副本部署请设置 DATABASE_URL 为 PostgreSQL。", file=sys.stderr)
    running = True

    def stop(*_: object) -> None:
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    with start(url, args.replicas, args.port, host=args.address) as cluster:
        print(
            f"已启动 {args.replicas} 个副本：{', '.join(cluster.replicas)}；入口 {cluster.url}（Ctrl-C 停止）"
        )
        while running:
            time.sleep(1)
            for url, proc in cluster.replicas.items():
                if proc.poll() is not None:
                    print(
                        f"副本 {url} 已退出（代码 {proc.returncode}）；其浏览器由 nginx 转到其他副本",
                        file=sys.stderr,
                    )
                    running = running and any(p.poll() is None for p in cluster.replicas.values())
    return 0


if __name__ == "__main__":
    sys.exit(main())
