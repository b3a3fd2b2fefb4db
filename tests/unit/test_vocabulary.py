"""The vocabulary's levels: from a user's own level down."""

from domain.vocabulary import AdminLevel


def test_the_linkage_names_the_levels_from_the_users_own_down():
    assert AdminLevel.CITY.linkage() == "市-县-乡-村-网格 五级联动"
    assert AdminLevel.COUNTY.linkage() == "县-乡-村-网格 四级联动"
    assert AdminLevel.TOWNSHIP.and_below() == [AdminLevel.TOWNSHIP, AdminLevel.VILLAGE, AdminLevel.GRID]
    assert AdminLevel.GRID.linkage() == "网格 一级联动"
    assert AdminLevel.COUNTY.linked() == "四级联动"
