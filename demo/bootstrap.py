"""First start of a store: migrate it in place; seed the demo when it is empty (``make store``), or with
``--no-demo`` (``make store DEMO=0``) leave it empty for a county's own area.

``python -m demo.bootstrap --scale town --seed 1``; ``--no-demo``: no demo data and no demo account, only
the placeholder unit (``services.boundaries.SETUP_CODE``) so the first visit can create the first
administrator, who then imports the boundaries (/boundaries). ``--print-accounts`` lists the demo
accounts present; ``--is-demo`` exits 0 only for a demo store (``make run`` starts the simulator then).
A county's own store needs nothing of demo/ at run time: ``python -m db.migrate`` and
``python -m services.boundaries`` do the same from the command line.
"""

from __future__ import annotations

import argparse
import time

from sqlalchemy import Engine, func, select

from db.engine import make_engine
from db.migrate import current_revision, upgrade
from db.models import AdminUnit, User
from db.uow import UnitOfWork
from demo.org import DEMO_PASSWORD
from services import clock

DEMO_ACCOUNTS = [
    ("demo_admin", "系统管理员"),
    ("demo_city", "市指挥中心"),
    ("demo_county", "县指挥中心（柯城区）"),
    ("demo_township", "乡镇领导（演示乡镇）"),
    ("demo_department", "部门处置人员（区城管）"),
    ("demo_township_department", "部门处置人员（演示乡镇综合行政执法队）"),
    ("demo_inspector", "网格员/检查员"),
]


def ensure_store(engine: Engine, scale: str = "town", seed: int = 1, *, demo: bool = True) -> str:
    """Migrate ``engine``'s store to the newest schema; if it holds no units yet, seed the demo (``demo``)
    or give it the placeholder unit of an own-area store (no demo data, no account)."""
    upgrade(engine)
    with engine.connect() as conn:
        units = conn.execute(select(func.count()).select_from(AdminUnit)).scalar_one()
    if units:
        return f"已有数据库，已迁移到 {current_revision(engine)}（{units} 个区划单元，数据保留）"
    if not demo:
        from services.boundaries import ensure_setup_unit  # geometry imports only when needed

        ensure_setup_unit(UnitOfWork(engine))
        return (
            "已创建空数据库（无演示数据、无账号）：首次打开驾驶舱时创建首个管理员，"
            "再在「区划导入」页（/boundaries）导入您的区划边界"
        )
    from demo.seed import seed as seed_demo  # heavy imports only when seeding

    t0 = time.perf_counter()
    seed_demo(engine, scale=scale, seed=seed, until=clock.today())
    return f"已创建演示数据库（{scale} 规模，种子 {seed}），用时 {time.perf_counter() - t0:.0f} 秒"


def is_demo(engine: Engine) -> bool:
    """A demo store: the demo seed's accounts are in it (an own-area store never has them)."""
    return bool(demo_accounts(engine))


def demo_accounts(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        present = set(
            conn.execute(
                select(User.username).where(User.username.in_([u for u, _ in DEMO_ACCOUNTS]))
            ).scalars()
        )
    return [u for u, _ in DEMO_ACCOUNTS if u in present]


def main() -> int:
    parser = argparse.ArgumentParser(description="创建或迁移数据库 (create or migrate the store)")
    parser.add_argument("--scale", default="town", choices=["tiny", "town", "city"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--no-demo", action="store_true", help="an empty store for your own area (no demo data)"
    )
    parser.add_argument("--print-accounts", action="store_true", help="only list the demo accounts")
    parser.add_argument("--is-demo", action="store_true", help="exit 0 for a demo store, 1 otherwise")
    parser.add_argument("--port", type=int, default=8501)
    args = parser.parse_args()
    engine = make_engine()
    if args.is_demo:
        if is_demo(engine):
            return 0
        print("本数据库不是演示库：不启动模拟器")
        return 1
    if not args.print_accounts:
        print(ensure_store(engine, args.scale, args.seed, demo=not args.no_demo))
        return 0
    accounts = demo_accounts(engine)
    if accounts:
        labels = dict(DEMO_ACCOUNTS)
        print(f"演示账号（密码均为 {DEMO_PASSWORD}）：")
        for name in accounts:
            print(f"  {name:<16} {labels[name]}")
    else:
        from services.boundaries import SETUP_CODE

        with engine.connect() as conn:
            nobody = not conn.execute(select(func.count()).select_from(User)).scalar_one()
            setup = conn.execute(select(AdminUnit.id).where(AdminUnit.code == SETUP_CODE)).first() is not None
        if nobody:
            print("尚无账号：首次打开驾驶舱时创建首个管理员（或 python -m services.accounts create-admin）")
        if setup:
            print("尚未导入区划：管理员登录后在「区划导入」页导入边界文件")
    print(f"驾驶舱地址: http://localhost:{args.port}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
