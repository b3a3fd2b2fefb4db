"""The five-level tree: ancestors and roll-ups."""

import pandas as pd

from domain.hierarchy import Tree, Unit, ancestor_table, descendants, rollup
from domain.vocabulary import AdminLevel

# city 1 → county 2 → township 3 → villages 4, 5 → grids 6, 7 (in 4) and 8 (in 5)
UNITS = pd.DataFrame(
    {
        "id": [1, 2, 3, 4, 5, 6, 7, 8],
        "parent_id": [None, 1, 2, 3, 3, 4, 4, 5],
        "level": ["city", "county", "township", "village", "village", "grid", "grid", "grid"],
    }
)


def test_each_grid_knows_its_ancestors_at_every_level():
    anc = ancestor_table(UNITS)
    assert anc.loc[7].tolist() == [1, 2, 3, 4, 7]
    assert anc.loc[8].tolist() == [1, 2, 3, 5, 8]


def test_levels_below_a_unit_are_empty():
    anc = ancestor_table(UNITS)
    assert anc.loc[3, "township"] == 3
    assert pd.isna(anc.loc[3, "village"]) and pd.isna(anc.loc[3, "grid"])


def test_a_parents_figures_are_the_sums_of_its_childrens():
    anc = ancestor_table(UNITS)
    grid_values = pd.DataFrame({"events": [5, 2, 10]}, index=[6, 7, 8])
    out = rollup(grid_values, anc)
    assert out.loc[4, "events"] == 7
    assert out.loc[5, "events"] == 10
    assert out.loc[1, "events"] == out.loc[2, "events"] == out.loc[3, "events"] == 17


def test_units_without_data_roll_up_to_zero():
    anc = ancestor_table(UNITS)
    out = rollup(pd.DataFrame({"events": [4]}, index=[6]), anc)
    assert out.loc[8, "events"] == 0 and out.loc[5, "events"] == 0 and out.loc[1, "events"] == 4


def test_a_tree_that_starts_below_the_city_still_rolls_up():
    units = UNITS[UNITS["id"] >= 2].assign(parent_id=lambda d: d["parent_id"].where(d["id"] != 2))
    anc = ancestor_table(units)
    out = rollup(pd.DataFrame({"n": [1, 1, 1]}, index=[6, 7, 8]), anc)
    assert pd.isna(anc.loc[6, "city"])
    assert out.loc[2, "n"] == 3


def test_descendants_at_a_level_are_the_units_inside_the_area():
    from domain.hierarchy import descendants, path_to_root

    anc = ancestor_table(UNITS)
    assert descendants(anc, 3, "grid") == [6, 7, 8]
    assert descendants(anc, 4, "grid") == [6, 7]
    assert descendants(anc, 1, "village") == [4, 5]
    assert descendants(anc, 6, "grid") == [6]
    assert path_to_root(anc, 7) == [1, 2, 3, 4, 7]


# -- the Tree ---------------------------------------------------------------------------------


L = AdminLevel


def _tree(rows=None) -> Tree:
    rows = rows or [
        (1, None, L.CITY, "33"),
        (2, 1, L.COUNTY, "3301"),
        (3, 2, L.TOWNSHIP, "330101"),
        (4, 3, L.VILLAGE, "33010102"),
        (5, 3, L.VILLAGE, "33010101"),
        (6, 4, L.GRID, "3301010201"),
        (7, 4, L.GRID, "3301010202"),
        (8, 5, L.GRID, "3301010101"),
    ]
    return Tree.from_units(Unit(i, p, lv, code, f"单元{i}") for i, p, lv, code in rows)


def test_a_unit_is_in_scope_only_inside_the_scopes_subtree():
    tree = _tree()
    assert tree.contains(3, 6) and tree.contains(3, 3) and tree.contains(1, 6)
    assert not tree.contains(4, 8) and not tree.contains(3, 2) and not tree.contains(3, 99)


def test_the_path_runs_from_the_top_down_to_the_unit():
    assert _tree().path(7) == [1, 2, 3, 4, 7]
    assert _tree().path(99) == []


def test_the_ancestor_at_a_level_is_the_unit_itself_at_its_own_level():
    tree = _tree()
    assert tree.ancestor(7, L.TOWNSHIP) == 3 and tree.ancestor(3, L.TOWNSHIP) == 3
    assert tree.ancestor(3, L.VILLAGE) is None
    assert tree.grid_village(8) == 5 and tree.grid_township(8) == 3


def test_grids_under_a_unit_come_in_code_order():
    tree = _tree()
    assert tree.grids_under(3) == [8, 6, 7]  # village 5 (…0101) before village 4 (…0102)
    assert tree.grids_under(6) == [6]
    assert tree.grids_under(None) == [8, 6, 7]
    assert tree.descendants(1, L.VILLAGE) == [5, 4]
    assert tree.children(3) == [5, 4]


def test_a_store_whose_top_is_a_county_has_the_county_as_its_root():
    """An own-area store may start below the city; its top's parent may point outside the file."""
    tree = _tree([(2, 77, L.COUNTY, "3301"), (3, 2, L.TOWNSHIP, "330101"), (6, 3, L.VILLAGE, "33010101")])
    assert tree.roots == (2,) and tree.top_level is L.COUNTY
    assert tree.path(6) == [2, 3, 6] and tree.contains(2, 6)
    assert tree.parent(2) is None


def test_a_parent_cycle_does_not_hang_the_walk():
    tree = _tree([(1, 2, L.COUNTY, "a"), (2, 1, L.TOWNSHIP, "b")])
    assert len(tree.path(1)) <= 2 and not tree.contains(3, 1)


def test_the_ancestor_table_of_a_county_only_store_answers_descendants():
    """A store with no city unit used to raise "boolean value of NA is ambiguous"."""
    tree = _tree([(2, None, L.COUNTY, "3301"), (3, 2, L.TOWNSHIP, "330101"), (4, 3, L.VILLAGE, "33010101")])
    anc = tree.ancestors()
    assert descendants(anc, 2, "village") == [4]
    assert tree.code(3) == "330101" and tree.by_code("330101") == 3 and tree.name(None) == "—"


def test_a_code_typed_with_full_width_digits_or_a_space_finds_its_unit():
    """A staff or department sheet typed with a Chinese input method (３３０１０１) or pasted from a table
    (3301 01) said 找不到编码 for a unit that is there."""
    tree = _tree([(2, None, L.COUNTY, "3301"), (3, 2, L.TOWNSHIP, "330101"), (9, 2, L.TOWNSHIP, "3301 02")])
    assert (
        tree.by_code("３３０１０１") == 3 and tree.by_code("3301 01") == 3 and tree.by_code(" 330101 ") == 3
    )
    # a code stored as typed (before codes were stored normalised) finds itself, and its normal form too
    assert tree.by_code("3301 02") == 9 and tree.by_code("330102") == 9
    assert tree.by_code("330103") is None
