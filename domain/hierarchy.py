"""The five-level tree (city → county → township → village → grid) as plain data, and roll-ups.

:class:`Tree` is the one walker of the tree: parent, level, code and name of every unit, with
``contains`` (the scope test), ``path``, ``ancestor``, ``descendants`` and ``grids_under``. It is built
from the store's rows by ``services.geography.load_tree`` and cached once per process by
``components.store.tree()``. A tree need not start at a city: a county- or township-only store has
its top unit at that level, and every walk starts from whatever units have no parent.

A parent's figures are the sums of its children's, so every level is computed from the grid level by
one group-by (:func:`rollup` over the :func:`ancestor_table`, a vectorised view of the same tree).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pandas as pd

from domain.vocabulary import AdminLevel

LEVELS = [lvl.value for lvl in AdminLevel]
#: More than the five levels: the bound only guards a corrupted parent cycle.
MAX_DEPTH = len(LEVELS) + 3


def unit_code(text: str) -> str:
    """A unit's code as stored (区划编码): full-width digits and letters as ASCII (NFKC, as a Chinese input
    method types them: ９９０１００) and no whitespace inside (330899 001 pasted from a table). The boundary
    import stores codes so, and :meth:`Tree.by_code` finds a code typed either way."""
    return "".join(unicodedata.normalize("NFKC", text).split())


@dataclass(frozen=True)
class Unit:
    """One administrative unit as the tree needs it."""

    id: int
    parent_id: int | None
    level: AdminLevel
    code: str
    name: str
    centroid: tuple[float, float] | None = None  # (lon, lat), WGS84


@dataclass(frozen=True)
class Tree:
    """Every unit by id, its children in code order, and each grid's village and township."""

    units: Mapping[int, Unit]
    _children: Mapping[int | None, tuple[int, ...]] = field(repr=False)
    _by_code: Mapping[str, int] = field(repr=False)

    @classmethod
    def from_units(cls, units: Iterable[Unit]) -> Tree:
        by_id = {u.id: u for u in units}
        kids: dict[int | None, list[int]] = {}
        for u in by_id.values():
            parent = u.parent_id if u.parent_id in by_id else None  # a parent outside the store: a top unit
            kids.setdefault(parent, []).append(u.id)
        children = {p: tuple(sorted(ids, key=lambda i: (by_id[i].code, i))) for p, ids in kids.items()}
        by_code = {unit_code(u.code): u.id for u in by_id.values()}
        by_code.update({u.code: u.id for u in by_id.values()})  # a code stored as typed finds itself too
        return cls(by_id, children, by_code)

    # -- lookups ------------------------------------------------------------------------------
    def __contains__(self, unit_id: object) -> bool:
        return unit_id in self.units

    def __len__(self) -> int:
        return len(self.units)

    @property
    def roots(self) -> tuple[int, ...]:
        """The top units (no parent in the store): one city, or a county/township for an own-area store."""
        return self._children.get(None, ())

    @property
    def top_level(self) -> AdminLevel | None:
        """The shallowest level present (city for the demo; county or township for an own-area store)."""
        levels = [self.units[r].level for r in self.roots]
        return min(levels, key=lambda lv: lv.depth) if levels else None

    def level(self, unit_id: int) -> AdminLevel:
        return self.units[unit_id].level

    def name(self, unit_id: int | None) -> str:
        """The unit's name, or "—" for none or an unknown id (for labels)."""
        unit = self.units.get(unit_id) if unit_id is not None else None
        return unit.name if unit is not None else "—"

    def code(self, unit_id: int) -> str:
        return self.units[unit_id].code

    def by_code(self, code: str) -> int | None:
        """The unit of ``code`` as a person typed it: full-width digits, spaces inside (:func:`unit_code`)."""
        text = str(code).strip()
        found = self._by_code.get(text)
        return found if found is not None else self._by_code.get(unit_code(text))

    def parent(self, unit_id: int) -> int | None:
        unit = self.units.get(unit_id)
        return unit.parent_id if unit is not None and unit.parent_id in self.units else None

    def children(self, unit_id: int | None) -> list[int]:
        """The unit's children in code order (``None``: the top units)."""
        return list(self._children.get(unit_id, ()))

    def at_level(self, level: AdminLevel) -> list[int]:
        return sorted(u.id for u in self.units.values() if u.level is level)

    # -- walks --------------------------------------------------------------------------------
    def path(self, unit_id: int) -> list[int]:
        """The unit's ancestors from the top of the tree down to the unit itself ([] if unknown)."""
        out: list[int] = []
        node: int | None = unit_id
        while node is not None and node in self.units and len(out) < MAX_DEPTH and node not in out:
            out.append(node)
            node = self.units[node].parent_id
        return out[::-1]

    def contains(self, ancestor_id: int | None, unit_id: int | None) -> bool:
        """Whether ``unit_id`` lies in the subtree of ``ancestor_id`` (itself included): the scope test."""
        if ancestor_id is None or unit_id is None:
            return False
        return ancestor_id in self.path(unit_id)

    def ancestor(self, unit_id: int, level: AdminLevel) -> int | None:
        """The unit's ancestor at ``level`` (itself if it is at that level), or None above the top."""
        return next((u for u in self.path(unit_id) if self.units[u].level is level), None)

    def descendants(self, unit_id: int | None, level: AdminLevel) -> list[int]:
        """Ids of the units at ``level`` inside ``unit_id`` (itself if at that level; None: the whole
        tree), in code order, walking down only as far as ``level``."""
        frontier = list(self.roots) if unit_id is None else [unit_id]
        found: list[int] = []
        for _ in range(MAX_DEPTH):
            if not frontier:
                break
            nxt: list[int] = []
            for u in frontier:
                if u not in self.units:
                    continue
                if self.units[u].level is level:
                    found.append(u)
                elif self.units[u].level.depth < level.depth:
                    nxt.extend(self._children.get(u, ()))
            frontier = nxt
        return found

    def grids_under(self, unit_id: int | None) -> list[int]:
        """The grids inside ``unit_id`` (itself if it is a grid; None: every grid), in code order."""
        return self.descendants(unit_id, AdminLevel.GRID)

    def grid_village(self, grid_id: int) -> int | None:
        return self.ancestor(grid_id, AdminLevel.VILLAGE)

    def grid_township(self, grid_id: int) -> int | None:
        return self.ancestor(grid_id, AdminLevel.TOWNSHIP)

    def ancestors(self) -> pd.DataFrame:
        """The :func:`ancestor_table` of this tree (one row per unit, a column per level)."""
        frame = pd.DataFrame(
            [(u.id, u.parent_id, u.level.value) for u in self.units.values()],
            columns=["id", "parent_id", "level"],
        )
        return ancestor_table(frame)


def ancestor_table(units: pd.DataFrame) -> pd.DataFrame:
    """One row per unit (index ``id``) with a column per level holding that level's ancestor id.

    ``units`` has columns ``id``, ``parent_id`` and ``level``. A unit's own level column holds its
    own id; levels below it are NA; so do levels above the tree's top (a user-loaded area may
    start at county level).
    """
    parent = dict(zip(units["id"], units["parent_id"], strict=True))
    level = dict(zip(units["id"], units["level"].astype(str), strict=True))
    rows = {}
    for uid in parent:
        row: dict[str, int] = {}
        node = uid
        while node is not None and not pd.isna(node):
            row[level[node]] = int(node)
            node = parent.get(node)
        rows[uid] = row
    out = pd.DataFrame.from_dict(rows, orient="index").reindex(columns=LEVELS).astype("Int64")
    out.index.name = "id"
    return out


def rollup(grid_values: pd.DataFrame, ancestors: pd.DataFrame) -> pd.DataFrame:
    """Sum per-grid figures (index = grid id, numeric columns) up to every unit of every level.

    Returns a frame indexed by unit id (all levels present in ``ancestors``), zeros where a unit
    has nothing. Grids absent from ``grid_values`` count as zero.
    """
    grids = ancestors[ancestors["grid"].notna()]
    grids = grids[grids["grid"] == grids.index.to_series().astype("Int64")]
    values = grid_values.reindex(grids.index).fillna(0)
    parts = []
    for name in LEVELS:
        col = grids[name]
        ok = col.notna()
        if not ok.any():
            continue
        parts.append(values[ok.to_numpy()].groupby(col[ok].astype("int64").to_numpy()).sum())
    out = pd.concat(parts) if parts else values.iloc[0:0]
    out = out.reindex(ancestors.index, fill_value=0)
    out.index.name = "id"
    return out


def descendants(ancestors: pd.DataFrame, unit_id: int, level: str) -> list[int]:
    """Ids of the units at ``level`` inside ``unit_id`` (itself if it is at that level), in id order."""
    anc = ancestors
    unit_level = next((lv for lv in LEVELS if _is(anc.at[unit_id, lv], unit_id)), None)
    if unit_level is None:
        raise KeyError(unit_id)
    at_level = anc[anc[level] == anc.index.to_series().astype("Int64")]
    inside = at_level[at_level[unit_level] == unit_id]
    return [int(i) for i in sorted(inside.index)]


def _is(value: object, unit_id: int) -> bool:
    """``value == unit_id`` for an ancestor-table cell that may be NA (levels above an own-area top)."""
    return not pd.isna(value) and int(value) == int(unit_id)  # type: ignore[call-overload]


def path_to_root(ancestors: pd.DataFrame, unit_id: int) -> list[int]:
    """The unit's ancestors from the top of the tree down to the unit itself."""
    row = ancestors.loc[unit_id]
    return [int(v) for v in row.dropna().tolist()]
