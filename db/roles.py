"""PostgreSQL: the application's database role, which changes business rows but can only read and append the trail.

``python -m db.roles [--role cockpit_app] [--login]`` against ``DATABASE_URL`` as the tables' owner
(the role that runs the migrations). It creates the role if absent (NOLOGIN by default; ``--login``
makes it a LOGIN role without a password: the DBA sets how it authenticates, e.g. a password or a
client certificate in pg_hba.conf) and grants, on the current database:

- SELECT, INSERT, UPDATE, DELETE on every business table;
- SELECT, INSERT only on ``audit_log`` (no UPDATE, DELETE or TRUNCATE: even with the guard trigger
  disabled by a superuser, the app cannot rewrite the trail);
- SELECT, UPDATE on ``audit_head`` (each record moves the head), SELECT on ``alembic_version``;
- USAGE, SELECT on the sequences.

Production runs the app (pages, simulator) as this role and the migrations as the owner; run this
again after every migration that adds a table (decision 0006). Idempotent.
"""

from __future__ import annotations

import argparse
import re
import sys

from sqlalchemy import Connection, text

from db.models import Base

APP_ROLE = "cockpit_app"
AUDIT_TABLES = ("audit_log", "audit_head")
_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def business_tables() -> list[str]:
    return [t.name for t in Base.metadata.sorted_tables if t.name not in AUDIT_TABLES]


def grant_app_role(conn: Connection, role: str = APP_ROLE, *, login: bool = False) -> None:
    """Create ``role`` if absent and (re)grant it the app's rights on the current database (PostgreSQL only)."""
    if conn.dialect.name != "postgresql":
        raise ValueError("数据库角色只适用于 PostgreSQL（SQLite 没有角色，见决策 0006）")
    if not _IDENT.match(role):
        raise ValueError(f"角色名“{role}”无效（小写字母、数字、下划线）")
    # Roles are cluster-wide and parallel runs may race to create one: a duplicate is fine.
    conn.execute(
        text(f"DO $$ BEGIN CREATE ROLE {role} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    )
    if login:
        conn.execute(text(f"ALTER ROLE {role} LOGIN"))
    database = conn.execute(text("SELECT current_database()")).scalar_one()
    everything = ", ".join([*business_tables(), *AUDIT_TABLES, "alembic_version"])
    conn.execute(text(f'GRANT CONNECT ON DATABASE "{database}" TO {role}'))
    conn.execute(text(f"GRANT USAGE ON SCHEMA public TO {role}"))
    conn.execute(text(f"REVOKE ALL ON {everything} FROM {role}"))
    conn.execute(text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(business_tables())} TO {role}"))
    conn.execute(text(f"GRANT SELECT, INSERT ON audit_log TO {role}"))
    conn.execute(text(f"GRANT SELECT, UPDATE ON audit_head TO {role}"))
    conn.execute(text(f"GRANT SELECT ON alembic_version TO {role}"))
    conn.execute(text(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}"))


def main(argv: list[str] | None = None) -> int:
    from db.engine import make_engine

    parser = argparse.ArgumentParser(description="创建应用数据库角色 (create the app's PostgreSQL role)")
    parser.add_argument("--role", default=APP_ROLE)
    parser.add_argument("--login", action="store_true", help="a LOGIN role (no password is set here)")
    args = parser.parse_args(argv)
    engine = make_engine()
    try:
        with engine.begin() as conn:
            grant_app_role(conn, args.role, login=args.login)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"角色 {args.role} 已授权：业务表 增删改查；audit_log 只读和追加；audit_head 读和更新")
    return 0


if __name__ == "__main__":
    sys.exit(main())
