"""The boundary import's outcome as the administrator reads it: settings that could not be carried over to the
new units are listed with what was done about them (decision 0027)."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from services.boundaries import ImportResult, NotCarried


def _outcome(result, done):
    from components.boundary_preview import show_outcome

    show_outcome(result, done=done)


def test_settings_that_could_not_be_carried_over_are_listed_with_their_outcome():
    result = ImportResult(
        carried=2,
        not_carried=[
            NotCarried("大屏令牌", "海岛区大屏", "海岛区（880002）", "已停用，请重新签发"),
            NotCarried("接口密钥", "海岛小程序", "海岛区（880002）", "已吊销，请重新创建"),
        ],
    )
    at = AppTest.from_function(_outcome, args=(result, False), default_timeout=30).run()
    assert not at.exception
    assert "将无法沿用" in at.warning[0].value
    table = at.dataframe[0].value
    assert list(table.columns) == ["设置", "名称", "原区划", "处理"]
    assert list(table["名称"]) == ["海岛区大屏", "海岛小程序"]
    assert list(table["处理"]) == ["已停用，请重新签发", "已吊销，请重新创建"]


def test_nothing_is_listed_when_every_setting_was_carried_over():
    at = AppTest.from_function(_outcome, args=(ImportResult(carried=3), True), default_timeout=30).run()
    assert not at.exception and not at.warning and not at.dataframe
