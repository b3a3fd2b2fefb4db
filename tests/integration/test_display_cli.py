"""``python -m services.display``: a wall's token made, listed and revoked from the server's shell; an
unknown area or a blank name is said in Chinese with exit code 2, never a traceback."""

from __future__ import annotations

import pytest

from services.display import main
from services.locate import forget_index
from tests.builders import make_square_area


@pytest.fixture
def store_url(empty_engine, monkeypatch):
    forget_index()
    with empty_engine.begin() as conn:
        make_square_area(conn)
    monkeypatch.setenv("DATABASE_URL", empty_engine.url.render_as_string(hide_password=False))
    return empty_engine


def test_a_token_for_the_stores_own_area_with_the_address_the_wall_opens(store_url, capsys):
    assert (
        main(
            ["create", "--area", "990000", "--label", "县指挥大厅", "--base-url", "https://cockpit.example/"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("大屏地址: https://cockpit.example/big_screen?token=") and out.rstrip().endswith(
        "&area=990000"
    )
    assert main(["list"]) == 0
    listed = capsys.readouterr().out
    assert "县指挥大厅" in listed and "有效" in listed
    assert main(["revoke", listed.split()[0]]) == 0
    assert "已吊销" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--area", "330802", "--label", "大厅"], "区划编码 330802 不存在"),
        (["--area", "990000", "--label", "  "], "请填写大屏名称"),
    ],
)
def test_an_unknown_area_or_a_blank_name_is_said_without_a_traceback(store_url, capsys, args, said):
    assert main(["create", *args]) == 2
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err
    assert main(["revoke", "abcdef"]) == 1
