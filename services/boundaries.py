"""Load a user's own area (GeoJSON or Shapefile of units) instead of Quzhou, filling the missing lower levels.

``python -m services.boundaries FILE [--no-fill] [--replace]`` against ``DATABASE_URL``.
Every problem is reported by feature (code and reason) and nothing is written; a valid file is
stored, lower levels generated down to grids, in one transaction.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field

from sqlalchemy import Engine, func, select

from db.migrate import upgrade
from db.models import AdminUnit
from geo.boundaries import BoundaryError, read_boundaries
from geo.generate import generate_below
from services import audit
from services.geography import store_units
from services.locate import forget_index


@dataclass
class ImportResult:
    errors: list[BoundaryError] = field(default_factory=list)
    units_by_level: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def import_boundaries(engine: Engine, source, *, fill: bool = True, replace: bool = False, seed: int = 1,
                      actor=None) -> ImportResult:
    """Validate ``source`` and store its units (and generated lower levels when ``fill``).

    The store must hold no units unless ``replace``, which empties it, but only after the file
    has passed every check and the lower levels have been generated: bad input changes nothing.
    """
    check = read_boundaries(source)
    if not check.ok:
        return ImportResult(errors=check.errors)
    units = generate_below(check.units, seed=seed) if fill else check.units
    upgrade(engine)
    with engine.connect() as conn:
        present = conn.execute(select(func.count()).select_from(AdminUnit)).scalar_one()
    if present and not replace:
        return ImportResult(
            errors=[BoundaryError(None, None, None, f"数据库中已有 {present} 个区划单元；如需替换请使用 --replace")]
        )
    if present:
        from db.engine import audit_exempt
        from demo.load import empty_store

        with engine.begin() as conn:  # the trail first says what is about to go (全留痕)
            audit.record(conn, **audit.who(actor), action="boundaries.replace", entity="admin_units", entity_id=None,
                         before={"units": present}, after=None, reason="导入自有区划边界前清空数据库（--replace）")
        with audit_exempt():
            empty_store(engine)
    with engine.begin() as conn:
        store_units(conn, units)
        audit.record(conn, **audit.who(actor), action="boundaries.import", entity="admin_units", entity_id=None,
                     before=None, after={"units_by_level": {str(k): int(v) for k, v in units.groupby("level").size().items()},
                                         "fill": fill, "replace": replace, "seed": seed})
    forget_index()
    return ImportResult(units_by_level=units.groupby("level").size().astype(int).to_dict())


def main(argv: list[str] | None = None) -> int:
    from db.engine import make_engine

    parser = argparse.ArgumentParser(description="导入自有区划边界 (import your own boundaries)")
    parser.add_argument("file", help="GeoJSON、Shapefile（.shp 或 .zip）")
    parser.add_argument("--no-fill", action="store_true", help="do not generate the missing lower levels")
    parser.add_argument("--replace", action="store_true", help="empty the store first (after validation)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    result = import_boundaries(make_engine(), args.file, fill=not args.no_fill, replace=args.replace, seed=args.seed)
    if not result.ok:
        print(f"导入失败，共 {len(result.errors)} 处问题，数据库未作任何修改：", file=sys.stderr)
        for e in result.errors:
            where = f"第 {e.feature_index + 1} 个要素" if e.feature_index is not None else "文件"
            print(f"  {where}  编码 {e.code or '-'}  字段 {e.field or '-'}：{e.reason}", file=sys.stderr)
        return 1
    print("导入完成：" + "，".join(f"{k} {v} 个" for k, v in result.units_by_level.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
