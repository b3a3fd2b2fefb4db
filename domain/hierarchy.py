"""The five-level tree as plain data: each grid's ancestors, and roll-ups of grid figures to every level.

A parent's figures are the sums of its children's, so every level is computed from the grid
level by one group-by; pages and the risk model use :func:`rollup` instead of their own joins.
"""

from __future__ import annotations

import pandas as pd

from domain.vocabulary import AdminLevel

LEVELS = [lvl.value for lvl in AdminLevel]


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
    unit_level = next((lv for lv in LEVELS if anc.at[unit_id, lv] == unit_id), None)
    if unit_level is None:
        raise KeyError(unit_id)
    at_level = anc[anc[level] == anc.index.to_series().astype("Int64")]
    inside = at_level[at_level[unit_level] == unit_id]
    return [int(i) for i in sorted(inside.index)]


def path_to_root(ancestors: pd.DataFrame, unit_id: int) -> list[int]:
    """The unit's ancestors from the top of the tree down to the unit itself."""
    row = ancestors.loc[unit_id]
    return [int(v) for v in row.dropna().tolist()]
