"""Import a user's own area (导入自有区划): a boundary file mapped and checked, filled down to grids, written in
one unit of work — or rolled back: the preview's dry run is the very same write, left without commit.

Two steps, so the page can show a preview before anything is written:

1. :func:`plan_import` (reads only): the file mapped (:class:`geo.boundaries.ColumnMapping`), its CRS
   handled, every feature checked — against the units already stored for codes and parents — and the
   lower levels generated (:func:`geo.generate.generate_below`). Every problem is listed, nothing written.
2. :func:`apply_plan` (one unit of work): the same store checks again inside the transaction, then the
   write. ``dry_run=True`` leaves the block without commit: what the preview reports is what the import
   does, and a failure can only surface before anything is kept.

On a store with units, the file's units are **added** (codes must be new; a top unit may hang under a
stored unit) unless ``replace``: then the new units **replace** the old ones in the same transaction.
Units whose code survives keep their row (and id); the rest are removed after everything pointing at them
has moved — venues and events to the new grid their point lies in (``services.locate.locate_among`` over
the new grids, inside the transaction; a point outside every new grid refuses the replace and is listed),
an event's owner to its new grid's unit at the owner's level, departments and accounts to the unit whose
code they had or, when that code is gone, to the new unit at the same level containing the old one's
label point. Such accounts are listed; those that are not administrators are disabled until an
administrator re-scopes them in /admin (decision 0025). A store made by ``make store DEMO=0`` holds one
placeholder unit (:data:`SETUP_CODE`, so the first administrator has a scope): the first import takes its
row over.

``python -m services.boundaries FILE [--replace] [--dry-run] [--no-fill] [--crs gcj02|EPSG:n]
[--parent none|create] [--parent-code C --parent-name N] [--level county] [--map field=column …]``
against ``DATABASE_URL``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import (
    Connection,
    String,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    select,
    text,
    update,
)

from db.models import AdminUnit, ApiKey, Base, Department, Event, InspectorGrid, User, Venue
from db.uow import UnitOfWork
from domain.access import CurrentUser
from domain.hierarchy import Tree
from domain.vocabulary import AdminLevel, Role
from geo.boundaries import (
    CRS_AUTO,
    MAX_FILE_BYTES,
    PARENT_AUTO,
    PARENT_NONE,
    BoundaryError,
    ColumnMapping,
    KnownUnit,
    ParentChoice,
    SourceFile,
    overlapping_stored,
    read_source,
    suggest_mapping,
    top_parent_codes,
    validate_units,
)
from geo.generate import LEVEL_INDEX, LEVELS, generate_below
from services import audit, clock, rollups, settings
from services.access import out_of_scope
from services.display import TOKENS_KEY
from services.geography import load_tree
from services.locate import forget_index, locate_among
from services.planning_settings import CAMPAIGNS_KEY

#: The placeholder top unit of a store made without demo data: it gives the first administrator a scope
#: until the first boundary import takes its row over.
SETUP_CODE = "000000"
SETUP_NAME = "待导入区划"
ADMIN_ONLY = "只有管辖全部区划的系统管理员可以导入区划边界"
SEVERAL_TOPS = (
    "数据库中有多个顶层区划，您只管辖其中之一，不能在页面上导入区划（以免改动其他区划）；"
    "请由运维人员在命令行执行 python -m services.boundaries 导入"
)
#: Listed at most, of the venues/events that a replace cannot place and of the re-scoped accounts.
LIST_LIMIT = 200
_CHUNK = 500


@dataclass(frozen=True)
class ImportOptions:
    """Everything the person chose: the mapping (None: suggested), the CRS, the top units' parent,
    whether to generate the missing lower levels, whether to replace the stored units, the seed."""

    mapping: ColumnMapping | None = None
    crs: str = CRS_AUTO
    parent: ParentChoice = field(default_factory=ParentChoice)
    fill: bool = True
    replace: bool = False
    seed: int = 1


@dataclass
class ImportPlan:
    """A checked file and the units it will write (file's, a created parent, generated ones; EPSG:4326)."""

    source_name: str
    options: ImportOptions
    units: gpd.GeoDataFrame | None = None
    from_file: frozenset[str] = frozenset()
    errors: list[BoundaryError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    estimated: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and self.units is not None

    def counts(self) -> pd.DataFrame:
        """Per level: units from the file, generated, in all, and residents (the preview's table)."""
        if self.units is None:
            return pd.DataFrame(columns=["level", "from_file", "generated", "total", "population"])
        u = self.units.assign(_file=self.units["code"].isin(self.from_file))
        rows = []
        for level in LEVELS:
            part = u[u["level"] == level]
            if len(part):
                top = part["parent_code"].isna() | ~part["parent_code"].isin(u["code"])
                rows.append(
                    {
                        "level": level,
                        "from_file": int(part["_file"].sum()),
                        "generated": int((~part["_file"]).sum()),
                        "total": len(part),
                        "population": int(part.loc[top, "population"].sum())
                        if top.all()
                        else int(part["population"].sum()),
                    }
                )
        return pd.DataFrame(rows)


@dataclass(frozen=True)
class Unplaced:
    """A venue or event whose point lies in no new grid (a replace is refused while there is one)."""

    kind: str  # venue / event
    id: int
    label: str
    lon: float
    lat: float


@dataclass(frozen=True)
class Rescoped:
    """An account whose scope unit's code is gone: moved to the unit now covering it, listed for review."""

    user_id: int
    username: str
    role: Role
    old_scope: str
    new_scope: str
    disabled: bool


@dataclass(frozen=True)
class NotCarried:
    """A setting that named a unit whose code is gone from the new tree: what it was and what was done."""

    setting: str  # 大屏令牌 / 专项整治 / 接口密钥
    label: str  # the token's, campaign's or key's name
    unit: str  # the vanished unit: 名称（编码）
    outcome: str  # what the import did about it, in Chinese


@dataclass
class ImportResult:
    errors: list[BoundaryError] = field(default_factory=list)
    units_by_level: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False
    kept: int = 0  # stored units whose code is in the new set: their rows were updated
    removed: int = 0  # stored units no longer in the new set
    relocated: dict[str, int] = field(default_factory=dict)
    unplaced: list[Unplaced] = field(default_factory=list)
    unplaced_total: int = 0
    rescoped: list[Rescoped] = field(default_factory=list)
    carried: int = 0  # unit references in settings and keys re-pointed by code
    not_carried: list[NotCarried] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class ImportFailed(RuntimeError):
    """Raised inside the unit of work to roll it back with the problems found (caught by apply_plan)."""

    def __init__(self, result: ImportResult) -> None:
        super().__init__("; ".join(e.reason for e in result.errors))
        self.result = result

    @classmethod
    def whole(cls, field: str, reason: str, code: str | None = None) -> ImportFailed:
        """One problem of the import as a whole (not of a feature of the file)."""
        return cls(ImportResult(errors=[BoundaryError(None, code, field, reason)]))


# ------------------------------------------------------------------------------------------------ reading


def read_file(
    source, *, filename: str | None = None, layer: str | None = None, max_bytes: int = MAX_FILE_BYTES
):
    """(the file as read, problems): GeoJSON, Shapefile (.shp or .zip), GeoPackage (:func:`geo.boundaries.read_source`)."""
    return read_source(source, filename=filename, layer=layer, max_bytes=max_bytes)


def known_units(conn: Connection) -> dict[str, KnownUnit]:
    """The stored units by code (the placeholder left out), with outlines down to townships for the
    containment check of a file hung under one of them."""
    rows = conn.execute(
        select(AdminUnit.code, AdminUnit.level, AdminUnit.name, AdminUnit.geometry_wkb).where(
            AdminUnit.code != SETUP_CODE
        )
    ).all()
    out = {}
    for r in rows:
        level = AdminLevel(r.level).value
        geom = shapely.from_wkb(r.geometry_wkb) if LEVEL_INDEX[level] <= LEVEL_INDEX["township"] else None
        out[str(r.code)] = KnownUnit(str(r.code), level, str(r.name), geom)
    return out


@dataclass(frozen=True)
class StoreState:
    """What the import page needs to know of the store before a file is chosen."""

    units: int
    setup_only: bool  # only the placeholder of a new store: the first import takes it over

    @property
    def empty(self) -> bool:
        return self.units == 0 or self.setup_only


def store_state(conn: Connection) -> StoreState:
    return StoreState(
        conn.execute(select(func.count()).select_from(AdminUnit)).scalar_one(), _only_setup(conn)
    )


def suggest_parent(conn: Connection, source: SourceFile, mapping: ColumnMapping, *, replacing: bool) -> str:
    """Where the file's top units most likely hang: under the stored unit their parent code names (auto),
    or nowhere when that parent is not stored (none); auto too when they name no parent."""
    codes = top_parent_codes(source.frame, mapping)
    if not codes:
        return PARENT_AUTO
    if not replacing:
        stored = set(conn.execute(select(AdminUnit.code).where(AdminUnit.code.in_(sorted(codes)))).scalars())
        if stored == codes:
            return PARENT_AUTO
    return PARENT_NONE


def _only_setup(conn: Connection) -> bool:
    codes = conn.execute(select(AdminUnit.code).limit(2)).scalars().all()
    return list(codes) == [SETUP_CODE]


def awaits_first_import(tree: Tree) -> bool:
    """Whether ``tree`` (the process's cached tree: no query) is a new store's, holding only the
    placeholder unit until the first boundary import — :func:`_only_setup` without a read."""
    return len(tree) <= 1 and all(tree.code(r) == SETUP_CODE for r in tree.roots)


def plan_import(conn: Connection, source: SourceFile, options: ImportOptions) -> ImportPlan:
    """Check ``source`` under ``options`` against the store (read through ``conn``) and generate the lower
    levels. Nothing is written; every problem is in ``errors``."""
    mapping = options.mapping or suggest_mapping(source.frame)
    options = replace(options, mapping=mapping)
    plan = ImportPlan(source.name, options, notes=list(source.notes))
    fresh = options.replace or _only_setup(conn)
    known = {} if fresh else known_units(conn)
    check = validate_units(source.frame, mapping, crs=options.crs, parent=options.parent, known=known)
    plan.notes += check.notes
    if not check.ok or check.units is None:
        plan.errors = check.errors
        return plan
    units = check.units
    if not fresh:  # added beside stored units: none of the file's may cover a place a stored one has
        plan.errors = _overlapping_stored(conn, units)
        if plan.errors:
            return plan
    if not options.fill:
        parents = set(units["parent_code"].dropna())
        childless = units[(units["level"] != "grid") & ~units["code"].isin(parents)]
        if len(childless):
            shown = "、".join(childless["code"].head(10))
            plan.errors = [
                BoundaryError(
                    None,
                    None,
                    "level",
                    f"选择了不生成下级，但有 {len(childless)} 个单元没有下级（{shown}…）：每个单元都须细分到网格",
                )
            ]
            return plan
    try:
        plan.units = generate_below(units, seed=options.seed)
    except ValueError as exc:  # more than the limit of units, or of children per parent
        plan.errors = [BoundaryError(None, None, None, f"无法生成下级区划: {exc}")]
        return plan
    plan.from_file = frozenset(units["code"])
    plan.estimated = check.estimated
    return plan


def _overlapping_stored(conn: Connection, units: gpd.GeoDataFrame) -> list[BoundaryError]:
    """The file's top units (those added to a stored area) against the stored units of their level."""
    top = units[~units["parent_code"].isin(units["code"])]
    errors: list[BoundaryError] = []
    for level, part in top.groupby("level"):
        stored = [
            (str(r.code), str(r.name), shapely.from_wkb(r.geometry_wkb))
            for r in conn.execute(
                select(AdminUnit.code, AdminUnit.name, AdminUnit.geometry_wkb).where(
                    AdminUnit.level == AdminLevel(level), AdminUnit.code != SETUP_CODE
                )
            )
        ]
        errors += overlapping_stored(part, stored)
    return errors


# ------------------------------------------------------------------------------------------------ writing


def apply_plan(
    uow: UnitOfWork, plan: ImportPlan, *, actor: CurrentUser | None = None, dry_run: bool = False
) -> ImportResult:
    """Write ``plan`` in one unit of work (``dry_run``: the same write, rolled back). ``actor`` None is the
    operator at the command line; a person must be an active administrator of the whole store (checked
    first, so that no one else learns even the plan's problems, and again in the write's transaction)."""
    if actor is not None:
        with uow.reader() as conn:
            _require_importer(conn, actor)
    if not plan.ok or plan.units is None:
        return ImportResult(errors=list(plan.errors), notes=list(plan.notes), dry_run=dry_run)
    units = plan.units
    by_level = {lv: int(n) for lv, n in units.groupby("level").size().items()}
    by_level = {lv: by_level[lv] for lv in LEVELS if lv in by_level}
    try:
        with uow.begin("boundaries.import"):
            conn = uow.conn
            _require_importer(conn, actor)
            result = _write(conn, plan, actor)
            if actor is not None:
                _one_top_left(conn)
            if result.relocated.get("events") and rollups.state(conn) is not None:
                # Events moved to new grids without a transition: the daily rollup is recomputed in this
                # same transaction, so no reader sees the new grids with the old counts (decision 0032).
                rollups.rebuild_in(conn, clock.now())
            result.units_by_level, result.dry_run = by_level, dry_run
            result.notes = list(plan.notes)
            audit.record(
                conn,
                **audit.who(actor),
                action="boundaries.import",
                entity="admin_units",
                entity_id=None,
                before=None,
                after={
                    "file": plan.source_name,
                    "units_by_level": by_level,
                    "fill": plan.options.fill,
                    "replace": plan.options.replace,
                    "seed": plan.options.seed,
                    "kept": result.kept,
                    "removed": result.removed,
                    "relocated": result.relocated,
                    "rescoped_user_ids": [r.user_id for r in result.rescoped],
                    "settings_carried": result.carried,
                    "settings_not_carried": [f"{n.setting}「{n.label}」{n.unit}" for n in result.not_carried],
                },
            )
            if dry_run:
                return result  # leaving the block without commit rolls every row back
            uow.commit()
    except ImportFailed as failed:
        failed.result.dry_run = dry_run
        failed.result.notes = list(plan.notes)
        return failed.result
    forget_index()
    return result


def _require_importer(conn: Connection, actor: CurrentUser | None) -> None:
    """A person importing boundaries is an active administrator of the whole store, as the store says
    now: scoped to its one top unit. A store of several top units (counties added side by side, each with
    its own administrator) has no such person: an administrator of one of them would otherwise replace or
    reshape the others'; there the trusted operator imports at the command line (``actor`` None)."""
    if actor is None:
        return
    row = None
    if actor.role is Role.ADMIN:
        row = conn.execute(
            select(User.role, User.scope_unit_id, User.is_active).where(User.id == actor.id)
        ).one_or_none()
    if (
        row is None
        or not row.is_active
        or Role(row.role) is not Role.ADMIN
        or row.scope_unit_id != actor.scope_unit_id
    ):
        raise out_of_scope(actor, "boundaries", None, ADMIN_ONLY)
    tops = conn.execute(select(AdminUnit.id).where(AdminUnit.parent_id.is_(None)).limit(2)).scalars().all()
    if tops != [row.scope_unit_id]:
        why = SEVERAL_TOPS if row.scope_unit_id in tops else ADMIN_ONLY
        raise out_of_scope(actor, "boundaries", None, why)


def _one_top_left(conn: Connection) -> None:
    """An import from the page must leave the store with one top unit: the administrator's scope. With
    several (a file of two districts without their city, 不设上级 or a parent named nowhere) the first
    administrator was moved to one of them, without a word of the others, and no administrator could import
    on the page again (:data:`SEVERAL_TOPS`). Raises :class:`ImportFailed` (rolled back) naming them."""
    tops = conn.execute(
        select(AdminUnit.code, AdminUnit.name).where(AdminUnit.parent_id.is_(None)).order_by(AdminUnit.code)
    ).all()
    if len(tops) <= 1:
        return
    shown = "、".join(f"{r.name}（{r.code}）" for r in tops[:5]) + (" 等" if len(tops) > 5 else "")
    raise ImportFailed.whole(
        "parent_code",
        f"导入后将有 {len(tops)} 个顶层单位（{shown}），您的管辖区划只能是其中之一，其余单位将无人管理，"
        "此后也不能在页面上导入区划：请在「顶层单位的上级」选择「由文件合并生成上级」并填写上级编码和名称"
        "（如所属市），或由运维人员在命令行导入（python -m services.boundaries）",
    )


def _lock(conn: Connection, replacing: bool) -> None:
    """PostgreSQL: one import at a time, and no fact written under a grid about to go while it runs
    (readers go on). SQLite's unit of work holds the store's write lock already."""
    if conn.dialect.name != "postgresql":
        return
    tables = (
        "admin_units, venues, events, departments, users, inspector_grids" if replacing else "admin_units"
    )
    conn.execute(text(f"LOCK TABLE {tables} IN SHARE ROW EXCLUSIVE MODE"))


@dataclass
class _Old:
    id: int
    code: str
    level: str
    name: str
    lon: float
    lat: float


def _write(conn: Connection, plan: ImportPlan, actor: CurrentUser | None) -> ImportResult:
    units = plan.units
    assert units is not None
    _lock(conn, plan.options.replace)
    old = [
        _Old(
            int(r.id),
            str(r.code),
            AdminLevel(r.level).value,
            str(r.name),
            float(r.centroid_lon),
            float(r.centroid_lat),
        )
        for r in conn.execute(
            select(
                AdminUnit.id,
                AdminUnit.code,
                AdminUnit.level,
                AdminUnit.name,
                AdminUnit.centroid_lon,
                AdminUnit.centroid_lat,
            )
        )
    ]
    setup_only = len(old) == 1 and old[0].code == SETUP_CODE
    replacing = bool(old) and (plan.options.replace or setup_only)
    if old and not replacing:
        _recheck_add(units, {o.code: o for o in old}, plan.from_file)
    reuse: dict[str, int] = {}
    if replacing:
        new_codes = set(units["code"])
        reuse = {o.code: o.id for o in old if o.level != "grid" and o.code in new_codes}
        roots = units.loc[units["parent_code"].isna(), "code"].tolist()
        if setup_only and len(roots) == 1:
            reuse[roots[0]] = old[
                0
            ].id  # the first import takes the placeholder's row (its admin keeps the id)
        gone = [o.id for o in old if o.id not in reuse.values()]
        for chunk in _chunks(gone):  # free their codes for the new rows; removed at the end
            conn.execute(
                update(AdminUnit)
                .where(AdminUnit.id.in_(chunk))
                .values(code=literal("~") + cast(AdminUnit.id, String))
            )
    ids = _store(conn, units, reuse, _estimated(units, plan))
    result = ImportResult(kept=0 if setup_only else len(reuse))  # the placeholder is no unit of the user's
    if not replacing:
        return result
    reused = set(reuse.values())
    vanished = [o for o in old if o.id not in reused]
    successor = _successors(units, ids, vanished)
    tree = load_tree(conn)
    new_grids = {ids[c] for c in units.loc[units["level"] == "grid", "code"]}
    gone_ids = {o.id for o in vanished}
    result.relocated = _relocate_facts(conn, tree, gone_ids, {o.id: o.level for o in old}, result)
    _move_departments(conn, successor, gone_ids)
    result.rescoped = _rescope_accounts(
        conn, tree, successor, gone_ids, {o.id: o for o in old}, set(units["code"]), actor
    )
    _cover_grids(conn, tree, new_grids)
    result.carried, result.not_carried = _carry_settings(conn, old, ids, set(reuse.values()), actor)
    _remap_other_references(conn, successor)
    for chunk in _chunks(sorted(gone_ids)):
        conn.execute(update(AdminUnit).where(AdminUnit.id.in_(chunk)).values(parent_id=None))
    for chunk in _chunks(sorted(gone_ids)):
        conn.execute(delete(AdminUnit).where(AdminUnit.id.in_(chunk)))
    result.removed = len(gone_ids)
    return result


def _chunks(ids: Iterable, size: int = _CHUNK) -> Iterable[list]:
    ids = list(ids)
    for i in range(0, len(ids), size):
        yield ids[i : i + size]


def _recheck_add(units: gpd.GeoDataFrame, stored: Mapping[str, _Old], from_file: frozenset[str]) -> None:
    """Adding to a stored area: no code already there, every parent outside the file stored at the level
    above (the plan checked this; the store may have changed since)."""
    errors = [
        BoundaryError(None, c, "code", "编码已在数据库中（如需替换现有区划，请选择「替换现有区划」）")
        for c in sorted(set(units["code"]) & set(stored))
    ]
    codes = set(units["code"])
    for code, parent, level in zip(units["code"], units["parent_code"], units["level"], strict=True):
        if parent is None or parent in codes:
            continue
        if parent not in stored:
            errors.append(
                BoundaryError(None, code, "parent_code", f"未知的上级编码 {parent}（数据库中已没有该单位）")
            )
        elif LEVEL_INDEX[level] != LEVEL_INDEX[stored[parent].level] + 1:
            errors.append(
                BoundaryError(
                    None, code, "level", f"级别与上级不匹配: 上级 {parent} 为 {stored[parent].level}"
                )
            )
    if errors:
        raise ImportFailed(ImportResult(errors=errors))


def _estimated(units: gpd.GeoDataFrame, plan: ImportPlan) -> set[str]:
    """The codes whose population rests on an estimate: the file's units without one (``plan.estimated``)
    and every unit generated below such a unit (their populations are shares of the estimate)."""
    out = set(plan.estimated)
    depth = units["level"].map(LEVEL_INDEX)
    for code, parent in units.loc[depth.sort_values(kind="stable").index, ["code", "parent_code"]].itertuples(
        index=False
    ):
        if code not in plan.from_file and parent in out:
            out.add(code)
    return out


def _store(
    conn: Connection, units: gpd.GeoDataFrame, reuse: Mapping[str, int], estimated: Collection[str] = ()
) -> dict[str, int]:
    """Write every unit parents first: rows in ``reuse`` (code → id) updated in place, the rest inserted;
    the codes in ``estimated`` had no population in the file (it was estimated: 投诉率 says so).
    Returns code → id of every unit of ``units``."""
    ids: dict[str, int] = dict(reuse)
    frame = units.assign(depth=units["level"].map(LEVEL_INDEX)).sort_values(["depth", "code"], kind="stable")
    points = shapely.point_on_surface(np.asarray(frame.geometry.values, dtype=object))
    frame = frame.assign(label_lon=shapely.get_x(points), label_lat=shapely.get_y(points))
    for _depth, part in frame.groupby("depth", sort=True):
        rows = []
        for u in part.itertuples(index=False):
            parent = u.parent_code if isinstance(u.parent_code, str) else None
            parent_id = None
            if parent is not None:
                parent_id = ids.get(parent)
                if parent_id is None:
                    parent_id = conn.execute(select(AdminUnit.id).where(AdminUnit.code == parent)).scalar()
                if parent_id is None:
                    raise ImportFailed.whole("parent_code", f"未知的上级编码 {parent}", code=u.code)
            rows.append(
                {
                    "code": str(u.code),
                    "name": str(u.name),
                    "level": AdminLevel(u.level),
                    "kind": str(u.kind),
                    "parent_id": parent_id,
                    "population": int(u.population),
                    "population_estimated": str(u.code) in estimated,
                    "area_km2": float(u.area_km2),
                    "centroid_lon": float(u.label_lon),
                    "centroid_lat": float(u.label_lat),
                    "geometry_wkb": shapely.to_wkb(u.geometry),
                }
            )
        updates = [{**r, "_id": reuse[r["code"]]} for r in rows if r["code"] in reuse]
        inserts = [r for r in rows if r["code"] not in reuse]
        if updates:
            conn.execute(update(AdminUnit).where(AdminUnit.id == bindparam("_id")), updates)
        for chunk in _chunks(inserts, 5_000):
            conn.execute(insert(AdminUnit), chunk)
            codes = [r["code"] for r in chunk]
            found = conn.execute(select(AdminUnit.code, AdminUnit.id).where(AdminUnit.code.in_(codes))).all()
            ids.update((str(code), int(uid)) for code, uid in found)
    return ids


def _successors(units: gpd.GeoDataFrame, ids: Mapping[str, int], vanished: list[_Old]) -> dict[int, int]:
    """For each vanished stored unit, the new unit that takes its place: the one with its code, else the
    new unit at its level containing its label point, else at the nearest level above that has one, else
    the first new top unit."""
    out: dict[int, int] = {}
    trees = {}
    for level in LEVELS:
        part = units[units["level"] == level]
        if len(part):
            geoms = np.asarray(part.geometry.values, dtype=object)
            trees[level] = (shapely.STRtree(geoms), geoms, part["code"].tolist())
    roots = sorted(units.loc[units["parent_code"].isna(), "code"])
    fallback = ids[roots[0]]
    for o in vanished:
        if o.code in ids:
            out[o.id] = ids[o.code]
            continue
        point = shapely.Point(o.lon, o.lat)
        found = None
        for level in reversed(LEVELS[: LEVEL_INDEX[o.level] + 1]):
            if level not in trees:
                continue
            tree, geoms, codes = trees[level]
            hits = tree.query(point, predicate="intersects")
            if len(hits):
                found = ids[codes[int(min(hits))]]
                break
        out[o.id] = found if found is not None else fallback
    return out


def _relocate_facts(
    conn: Connection, tree: Tree, gone: set[int], old_levels: Mapping[int, str], result: ImportResult
) -> dict[str, int]:
    """Every venue and event to the new grid its point lies in (an event's owner to that grid's unit at
    the owner's former level); any point in no new grid refuses the import (listed)."""
    venues = conn.execute(select(Venue.id, Venue.code, Venue.name, Venue.lon, Venue.lat)).all()
    events = conn.execute(select(Event.id, Event.title, Event.lon, Event.lat, Event.owner_unit_id)).all()
    unplaced: list[Unplaced] = []
    moved: dict[str, list[dict]] = {"venues": [], "events": []}
    for kind, rows in (("venues", venues), ("events", events)):
        if not rows:
            continue
        grid_ids = locate_among(conn, [r.lon for r in rows], [r.lat for r in rows], exclude=gone)
        for r, g in zip(rows, grid_ids, strict=True):
            if g is None:
                label = f"{r.code} {r.name}" if kind == "venues" else f"#{r.id} {r.title}"
                unplaced.append(Unplaced(kind[:-1], int(r.id), label, float(r.lon), float(r.lat)))
            elif kind == "venues":
                moved[kind].append({"_id": r.id, "grid_id": int(g)})
            else:
                level = AdminLevel(old_levels.get(r.owner_unit_id, "grid"))
                owner = tree.ancestor(int(g), level) or tree.path(int(g))[0]
                moved[kind].append({"_id": r.id, "grid_id": int(g), "owner_unit_id": int(owner)})
    if unplaced:
        n_v = sum(u.kind == "venue" for u in unplaced)
        n_e = len(unplaced) - n_v
        raise ImportFailed(
            ImportResult(
                errors=[
                    BoundaryError(
                        None,
                        None,
                        "geometry",
                        f"新区划未覆盖 {n_v} 个场所和 {n_e} 个事件的位置（见下方清单），替换未执行："
                        "请检查边界文件是否完整，或先处理这些场所和事件",
                    )
                ],
                unplaced=unplaced[:LIST_LIMIT],
                unplaced_total=len(unplaced),
            )
        )
    steps = (
        ("venues", update(Venue).where(Venue.id == bindparam("_id")).values(grid_id=bindparam("grid_id"))),
        (
            "events",
            update(Event)
            .where(Event.id == bindparam("_id"))
            .values(grid_id=bindparam("grid_id"), owner_unit_id=bindparam("owner_unit_id")),
        ),
    )
    for name, statement in steps:
        for chunk in _chunks(moved[name], 5_000):
            conn.execute(statement, chunk)
    return {k: len(v) for k, v in moved.items()}


def _move_departments(conn: Connection, successor: Mapping[int, int], gone: set[int]) -> None:
    """Departments of a removed unit serve its successor; two of one kind meeting there refuse the import."""
    rows = conn.execute(select(Department.id, Department.name, Department.kind, Department.unit_id)).all()
    target = {r.id: successor.get(r.unit_id, r.unit_id) if r.unit_id in gone else r.unit_id for r in rows}
    seen: dict[tuple[int, str], str] = {}
    errors = []
    for r in rows:
        key = (target[r.id], r.kind)
        if key in seen:
            errors.append(
                BoundaryError(
                    None,
                    None,
                    "departments",
                    f"部门「{r.name}」与「{seen[key]}」将归入同一区划，同类部门只能有一个：请先合并",
                )
            )
        seen[key] = r.name
    if errors:
        raise ImportFailed(ImportResult(errors=errors))
    moves = [{"_id": r.id, "unit_id": target[r.id]} for r in rows if target[r.id] != r.unit_id]
    if moves:
        conn.execute(
            update(Department).where(Department.id == bindparam("_id")).values(unit_id=bindparam("unit_id")),
            moves,
        )


def _rescope_accounts(
    conn: Connection,
    tree: Tree,
    successor: Mapping[int, int],
    gone: set[int],
    old: Mapping[int, _Old],
    new_codes: set[str],
    actor: CurrentUser | None,
) -> list[Rescoped]:
    """Accounts scoped to a removed unit move to its successor. Where the code itself is gone the account is
    listed, and disabled unless it is an administrator (someone must be able to re-scope the others);
    each change is one audit row."""
    rows = conn.execute(
        select(User.id, User.username, User.role, User.scope_unit_id, User.is_active).where(
            User.scope_unit_id.in_(gone)
        )
    ).all()
    out = []
    for r in rows:
        before = old[r.scope_unit_id]
        new = successor[r.scope_unit_id]
        same_code = (
            before.code in new_codes
        )  # a regenerated grid with the same code: the same place, a new row
        role = Role(r.role)
        disable = not same_code and role is not Role.ADMIN and bool(r.is_active)
        conn.execute(
            update(User)
            .where(User.id == r.id)
            .values(scope_unit_id=new, is_active=False if disable else User.is_active)
        )
        if same_code:
            reason = "区划导入：管辖单位编码不变，随新区划更新"
        else:
            reason = "区划导入：原管辖单位已不存在，改为覆盖其位置的新单位" + (
                "，账号停用待管理员确认" if disable else ""
            )
        audit.record(
            conn,
            **audit.who(actor),
            action="accounts.rescope",
            entity="users",
            entity_id=int(r.id),
            before={
                "scope_unit_id": r.scope_unit_id,
                "scope_code": before.code,
                "is_active": bool(r.is_active),
            },
            after={
                "scope_unit_id": new,
                "scope_code": tree.code(new),
                "is_active": bool(r.is_active) and not disable,
            },
            reason=reason,
        )
        if not same_code:
            out.append(
                Rescoped(
                    int(r.id),
                    str(r.username),
                    role,
                    f"{before.name}（{before.code}）",
                    f"{tree.name(new)}（{tree.code(new)}）",
                    disable,
                )
            )
    return out


def _cover_grids(conn: Connection, tree: Tree, new_grids: set[int]) -> None:
    """Every inspector covers the new grids under their (possibly new) scope (decision 0014's rule)."""
    inspectors = conn.execute(select(User.id, User.scope_unit_id).where(User.role == Role.INSPECTOR)).all()
    conn.execute(delete(InspectorGrid))
    rows = [
        {"user_id": int(r.id), "grid_id": g}
        for r in inspectors
        for g in tree.grids_under(r.scope_unit_id)
        if g in new_grids
    ]
    for chunk in _chunks(rows, 5_000):
        conn.execute(insert(InspectorGrid), chunk)


def _ascii_number(value) -> bool:
    """Whether ``value`` is written in ASCII digits only ('²' and '١' are digits ``int`` refuses or reads)."""
    text = str(value)
    return text.isascii() and text.isdigit()


def _carry_settings(
    conn: Connection, old: list[_Old], ids: Mapping[str, int], kept: set[int], actor: CurrentUser | None
) -> tuple[int, list[NotCarried]]:
    """Settings that name units by id (wall-screen tokens' areas, campaigns' areas) and API keys' areas are
    carried over by code: a kept row keeps its id, a unit whose code is in the new tree gets the new row's
    id. Where the code is gone nothing is guessed: the token and the key are revoked, the area leaves the
    campaign (a campaign left without any is removed), and each is listed (decision 0027)."""
    by_id = {o.id: o for o in old}

    def carry(unit_id) -> int | None:
        if unit_id in kept:
            return int(unit_id)
        o = by_id.get(int(unit_id)) if isinstance(unit_id, int | str) and _ascii_number(unit_id) else None
        return ids.get(o.code) if o is not None else None

    def shown(unit_id) -> str:
        o = by_id.get(int(unit_id)) if _ascii_number(unit_id) else None
        return f"{o.name}（{o.code}）" if o is not None else f"（编号 {unit_id}）"

    now, carried, lost = clock.now(), 0, []
    reason = "区划导入：设置中的区划按编码改指新区划"
    raw = settings.read(conn, TOKENS_KEY)
    if raw:
        tokens, changed = json.loads(raw), False
        for token in tokens.values():
            unit = token.get("scope_unit_id")
            new = carry(unit)
            if new is not None:
                carried += new != unit
                changed |= new != unit
                token["scope_unit_id"] = new
            elif not token.get("revoked"):
                token["revoked"], changed = True, True
                lost.append(
                    NotCarried("大屏令牌", str(token.get("label", "")), shown(unit), "已停用，请重新签发")
                )
        if changed:
            settings.write(
                conn,
                TOKENS_KEY,
                json.dumps(tokens, ensure_ascii=False),
                now,
                actor=actor,
                action="boundaries.carry_settings",
                reason=reason,
            )
    raw = settings.read(conn, CAMPAIGNS_KEY)
    if raw:
        campaigns, kept_campaigns, changed = json.loads(raw), [], False
        for c in campaigns:
            areas = []
            for unit in c.get("area_ids", []):
                new = carry(unit)
                if new is None:
                    changed = True
                    lost.append(
                        NotCarried("专项整治", str(c.get("name", "")), shown(unit), "该区域已移出整治范围")
                    )
                else:
                    carried += new != unit
                    changed |= new != unit
                    areas.append(new)
            if areas:
                kept_campaigns.append({**c, "area_ids": sorted(set(areas))})
            elif c.get("area_ids"):
                lost.append(
                    NotCarried("专项整治", str(c.get("name", "")), "（全部区域）", "整治已无区域，已删除")
                )
        if changed:
            settings.write(
                conn,
                CAMPAIGNS_KEY,
                json.dumps(kept_campaigns, ensure_ascii=False, sort_keys=True),
                now,
                actor=actor,
                action="boundaries.carry_settings",
                reason=reason,
            )
    keys = conn.execute(
        select(ApiKey.id, ApiKey.label, ApiKey.scope_unit_id).where(
            ApiKey.revoked_at.is_(None), ApiKey.scope_unit_id.in_([o.id for o in old if o.id not in kept])
        )
    ).all()
    for key in keys:
        if carry(key.scope_unit_id) is None:  # the code is gone: revoked (the successor is only a guess)
            conn.execute(update(ApiKey).where(ApiKey.id == key.id).values(revoked_at=now))
            audit.record(
                conn,
                **audit.who(actor),
                action="api_key.revoke",
                entity="api_keys",
                entity_id=int(key.id),
                before={"scope_unit_id": key.scope_unit_id, "revoked_at": None},
                after={"revoked_at": now.isoformat()},
                reason="区划导入：密钥的区域已不在新区划中",
            )
            lost.append(
                NotCarried("接口密钥", str(key.label), shown(key.scope_unit_id), "已吊销，请重新创建")
            )
        else:
            carried += 1  # moved to the new row with the same code by _remap_other_references
    return carried, lost


#: References to units handled above; any other foreign key to admin_units is moved to the successor.
_HANDLED = {
    ("admin_units", "parent_id"),
    ("departments", "unit_id"),
    ("users", "scope_unit_id"),
    ("inspector_grids", "grid_id"),
    ("venues", "grid_id"),
    ("events", "grid_id"),
    ("events", "owner_unit_id"),
}


def _remap_other_references(conn: Connection, successor: Mapping[int, int]) -> None:
    """Every other column pointing at a removed unit (the trail of an event's steps, and whatever table a
    later migration adds) is pointed at its successor."""
    if not successor:
        return
    for table in Base.metadata.sorted_tables:
        for fk in table.foreign_keys:
            if fk.column.table.name != "admin_units" or (table.name, fk.parent.name) in _HANDLED:
                continue
            col = fk.parent
            for chunk in _chunks(sorted(successor.items())):
                mapping = dict(chunk)
                conn.execute(
                    table.update()
                    .where(col.in_(list(mapping)))
                    .values({col.name: case(mapping, value=col, else_=col)})
                )


# ------------------------------------------------------------------------------------------------ the use cases


def preview(
    uow: UnitOfWork, source: SourceFile, options: ImportOptions, *, actor: CurrentUser | None
) -> tuple[ImportPlan, ImportResult]:
    """The plan and what its write would do, rolled back (the page shows both before 导入)."""
    with uow.reader() as conn:
        plan = plan_import(conn, source, options)
    return plan, apply_plan(uow, plan, actor=actor, dry_run=True)


def import_boundaries(
    uow: UnitOfWork,
    source,
    *,
    mapping: ColumnMapping | None = None,
    crs: str = CRS_AUTO,
    parent: ParentChoice | None = None,
    fill: bool = True,
    replace: bool = False,
    seed: int = 1,
    actor: CurrentUser | None = None,
    dry_run: bool = False,
    filename: str | None = None,
    max_bytes: int = MAX_FILE_BYTES,
) -> ImportResult:
    """Read, plan and write ``source`` (a path, bytes or an upload) in one call: the command line's and the
    tests' way. Every problem is in the result's ``errors`` and then nothing is written."""
    source_file, problems = read_source(source, filename=filename, max_bytes=max_bytes)
    if source_file is None:
        return ImportResult(errors=problems, dry_run=dry_run)
    options = ImportOptions(mapping, crs, parent or ParentChoice(), fill, replace, seed)
    with uow.reader() as conn:
        plan = plan_import(conn, source_file, options)
    return apply_plan(uow, plan, actor=actor, dry_run=dry_run)


def ensure_setup_unit(uow: UnitOfWork, *, now: datetime | None = None) -> bool:
    """A store without units gets the placeholder top unit (:data:`SETUP_CODE`), so the first-run form can
    create the first administrator before any boundary is imported. False when units exist."""
    with uow.begin("boundaries.setup_unit"):
        conn = uow.conn
        if conn.execute(select(func.count()).select_from(AdminUnit)).scalar_one():
            return False
        conn.execute(
            insert(AdminUnit),
            {
                "code": SETUP_CODE,
                "name": SETUP_NAME,
                "level": AdminLevel.CITY,
                "kind": "待导入",
                "parent_id": None,
                "population": 0,
                "area_km2": 0.0,
                "centroid_lon": 0.0,
                "centroid_lat": 0.0,
                "geometry_wkb": shapely.to_wkb(shapely.Polygon()),
            },
        )
        audit.record(
            conn,
            **audit.who(None),
            action="boundaries.setup_unit",
            entity="admin_units",
            entity_id=None,
            before=None,
            after={"code": SETUP_CODE, "name": SETUP_NAME},
            reason="新建数据库：占位区划，首次导入区划边界时替换",
            at=now,
        )
        uow.commit()
    return True


# ------------------------------------------------------------------------------------------------ CLI


def _mapping_from_args(args, suggested: ColumnMapping) -> ColumnMapping:
    changes: dict = {}
    for item in args.map or []:
        key, _, col = item.partition("=")
        key = {"parent_code": "parent"}.get(key.strip(), key.strip())
        if key not in {"code", "name", "level", "parent", "population", "kind"}:
            raise SystemExit(f"--map 只接受 code/name/level/parent/population/kind=列名，收到 {item}")
        changes[key] = col.strip() or None
    if args.level:
        changes["fixed_level"] = args.level
        changes.setdefault("level", None)
    return replace(suggested, **changes) if changes else suggested


def main(argv: list[str] | None = None) -> int:
    from db.engine import make_engine
    from db.migrate import upgrade

    parser = argparse.ArgumentParser(description="导入自有区划边界 (import your own boundaries)")
    parser.add_argument("file", help="GeoJSON、Shapefile（.shp 或 .zip）、GeoPackage")
    parser.add_argument("--no-fill", action="store_true", help="do not generate the missing lower levels")
    parser.add_argument("--replace", action="store_true", help="replace the stored units (facts re-located)")
    parser.add_argument("--dry-run", action="store_true", help="check and run the write, then roll it back")
    parser.add_argument(
        "--crs", default=CRS_AUTO, help="auto (the file's), gcj02, or EPSG:n for a file without CRS"
    )
    parser.add_argument("--parent", default=PARENT_AUTO, choices=["auto", "create", "none"])
    parser.add_argument("--parent-code", default=None)
    parser.add_argument("--parent-name", default=None)
    parser.add_argument(
        "--level", default=None, help="every feature's level when the file has no level column"
    )
    parser.add_argument("--map", action="append", help="field=column, e.g. --map code=XZQDM --map name=XZQMC")
    parser.add_argument("--layer", default=None, help="GeoPackage layer (or .shp name inside a zip)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    engine = make_engine()
    upgrade(engine)
    source, problems = read_file(args.file, layer=args.layer)
    if source is None:
        return _report(ImportResult(errors=problems))
    options = ImportOptions(
        _mapping_from_args(args, suggest_mapping(source.frame)),
        args.crs,
        ParentChoice(args.parent, args.parent_code, args.parent_name),
        not args.no_fill,
        args.replace,
        args.seed,
    )
    with engine.connect() as conn:
        plan = plan_import(conn, source, options)
    return _report(apply_plan(UnitOfWork(engine), plan, dry_run=args.dry_run))


def _report(result: ImportResult) -> int:
    for note in result.notes:
        print(f"说明：{note}")
    if not result.ok:
        print(f"导入失败，共 {len(result.errors)} 处问题，数据库未作任何修改：", file=sys.stderr)
        for e in result.errors:
            print(f"  {e.where()}  编码 {e.code or '-'}  字段 {e.field or '-'}：{e.reason}", file=sys.stderr)
        if any(e.field == "parent_code" and "不设上级" in e.reason for e in result.errors):
            print(
                "  （命令行：--parent none，或 --parent create --parent-name 名称 [--parent-code 编码]）",
                file=sys.stderr,
            )
        for u in result.unplaced:
            print(
                f"  未覆盖的{'场所' if u.kind == 'venue' else '事件'} {u.label}（{u.lon:.6f}, {u.lat:.6f}）",
                file=sys.stderr,
            )
        return 1
    head = "检查通过（未写入）" if result.dry_run else "导入完成"
    print(head + "：" + "，".join(f"{AdminLevel(k).label} {v} 个" for k, v in result.units_by_level.items()))
    if result.removed or result.kept:
        print(f"保留 {result.kept} 个原有单元，移除 {result.removed} 个；重新定位：{result.relocated}")
    for r in result.rescoped:
        state = "已停用，待管理员确认" if r.disabled else "仍可登录"
        print(f"  账号 {r.username}（{r.role.label}）管辖区划 {r.old_scope} → {r.new_scope}，{state}")
    for n in result.not_carried:
        print(f"  {n.setting}「{n.label}」所指区划 {n.unit} 已不存在：{n.outcome}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
