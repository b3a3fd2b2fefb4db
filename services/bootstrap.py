"""First start of a store: migrate it in place, and seed the demo when it is empty (``make store``)."""

from __future__ import annotations

import argparse
import time

from sqlalchemy import Engine, func, select

from db.engine import make_engine
from db.migrate import current_revision, upgrade
from db.models import AdminUnit, User
from services import clock

DEMO_PASSWORD = "demo-cockpit"
DEMO_ACCOUNTS = [
    ("demo_admin", "系统管理员"),
    ("demo_city", "市指挥中心"),
    ("demo_county", "县指挥中心（柯城区）"),
    ("demo_township", "乡镇领导（演示乡镇）"),
    ("demo_department", "部门处置人员"),
    ("demo_inspector", "网格员/检查员"),
]


def ensure_store(engine: Engine, scale: str = "town", seed: int = 1) -> str:
    """Migrate ``engine``'s store to the newest schema; seed the demo if it holds no units yet."""
    upgrade(engine)
    with engine.connect() as conn:
        units = conn.execute(select(func.count()).select_from(AdminUnit)).scalar_one()
    if units:
        return f"已有数据库，已迁移到 {current_revision(engine)}（{units} 个区划单元，数据保留）"
    from demo.seed import seed as seed_demo  # heavy imports only when seeding

    t0 = time.perf_counter()
    seed_demo(engine, scale=scale, seed=seed, until=clock.today())
    return f"已创建演示数据库（{scale} 规模，种子 {seed}），用时 {time.perf_counter() - t0:.0f} 秒"


def demo_accounts(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        present = set(
            conn.execute(select(User.username).where(User.username.in_([u for u, _ in DEMO_ACCOUNTS]))).scalars()
        )
    return [u for u, _ in DEMO_ACCOUNTS if u in present]


def main() -> None:
    parser = argparse.ArgumentParser(description="创建或迁移数据库 (create or migrate the store)")
    parser.add_argument("--scale", default="town", choices=["tiny", "town", "city"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--print-accounts", action="store_true", help="only list the demo accounts")
    parser.add_argument("--port", type=int, default=8501)
    args = parser.parse_args()
    engine = make_engine()
    if not args.print_accounts:
        print(ensure_store(engine, args.scale, args.seed))
        return
    accounts = demo_accounts(engine)
    if accounts:
        labels = dict(DEMO_ACCOUNTS)
        print(f"演示账号（密码均为 {DEMO_PASSWORD}）：")
        for name in accounts:
            print(f"  {name:<16} {labels[name]}")
    print(f"驾驶舱地址: http://localhost:{args.port}")


if __name__ == "__main__":
    main()
