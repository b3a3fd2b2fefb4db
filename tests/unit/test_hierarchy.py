"""The five-level tree: ancestors and roll-ups."""

import pandas as pd

from domain.hierarchy import ancestor_table, rollup

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
