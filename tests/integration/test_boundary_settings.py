"""A boundary replace carries the settings that name units by id over by code (SQLite, and PostgreSQL when
DATABASE_URL says so): wall-screen tokens, campaigns (专项整治) and API keys follow a unit whose code is in the
new tree; where the code is gone nothing is guessed — the token and the key are revoked, the area leaves the
campaign — and the import's result lists each (decision 0027)."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import insert, select

from db.models import AdminUnit, ApiKey, AuditLog, Setting
from db.uow import UnitOfWork
from services import api_keys, display
from services.boundaries import import_boundaries
from services.display import TOKENS_KEY
from services.planning_settings import CAMPAIGNS_KEY, load_campaigns
from tests.integration.test_boundary_import import _harbour_city, _populated, _unit_id

NOW = datetime(2026, 11, 21, 10, 0)
GRID = "880001001001001"  # a mainland grid: regenerated with the same code (grids are always new rows)


def _settings(engine) -> dict:
    with engine.connect() as conn:
        return {k: json.loads(v) for k, v in conn.execute(select(Setting.key, Setting.value_json))}


def _in_use(engine, tmp_path) -> dict:
    data = _populated(engine, tmp_path)
    uow = UnitOfWork(engine)
    for code, label in (("880000", "市指挥大厅"), (GRID, "网格屏"), ("880002", "海岛区大屏")):
        display.create_token(uow, area_code=code, label=label, now=NOW)
    keys = {
        label: api_keys.create_key(uow, actor=None, channel=channel, label=label, area_code=code, now=NOW)[0]
        for channel, label, code in (
            ("hotline", "港城12345", "880001001"),
            ("island", "海岛小程序", "880002"),
        )
    }
    ids = {c: _unit_id(engine, c) for c in ("880001", "880001001", "880002", "880002001", GRID)}
    campaigns = [
        {
            "name": "沿海整治",
            "category": "street_shop",
            "area_ids": [ids["880001001"], ids["880002"]],
            "start": "2026-11-01",
            "end": "2026-12-31",
            "every_days": 7,
        },
        {
            "name": "海岛专项",
            "category": "street_shop",
            "area_ids": [ids["880002001"]],
            "start": "2026-11-01",
            "end": "2026-12-31",
            "every_days": 7,
        },
    ]
    with engine.begin() as conn:
        conn.execute(
            insert(Setting), {"key": CAMPAIGNS_KEY, "value_json": json.dumps(campaigns), "updated_at": NOW}
        )
    return {**data, "keys": keys, "ids": ids}


def test_a_replace_carries_unit_references_in_settings_by_code_and_lists_what_it_cannot(
    empty_engine, tmp_path
):
    engine = empty_engine
    data = _in_use(engine, tmp_path)
    # The island district's code changes (880002 → 880009); the city and the mainland keep theirs.
    path = _harbour_city(tmp_path, name="next.geojson", east_code="880009")
    preview = import_boundaries(UnitOfWork(engine), path, seed=3, replace=True, dry_run=True)
    assert preview.ok
    result = import_boundaries(UnitOfWork(engine), path, seed=3, replace=True)
    assert result.ok, result.errors
    township = result.not_carried[2].unit  # a generated township's name
    assert township.endswith("（880002001）")
    assert [(n.setting, n.label, n.unit) for n in result.not_carried] == [
        ("大屏令牌", "海岛区大屏", "海岛区（880002）"),
        ("专项整治", "沿海整治", "海岛区（880002）"),
        ("专项整治", "海岛专项", township),
        ("专项整治", "海岛专项", "（全部区域）"),
        ("接口密钥", "海岛小程序", "海岛区（880002）"),
    ]
    assert "重新签发" in result.not_carried[0].outcome and "吊销" in result.not_carried[-1].outcome
    assert result.carried == 1  # the grid's token (the kept units' references need no change)
    assert preview.not_carried == result.not_carried  # the preview said what the import did

    stored = _settings(engine)
    tokens = {t["label"]: t for t in stored[TOKENS_KEY].values()}
    new_grid = _unit_id(engine, GRID)
    assert new_grid != data["ids"][GRID]  # the grid is a new row with the same code: the token follows it
    assert tokens["网格屏"]["scope_unit_id"] == new_grid and not tokens["网格屏"]["revoked"]
    assert (
        tokens["市指挥大厅"]["scope_unit_id"] == _unit_id(engine, "880000")
        and not tokens["市指挥大厅"]["revoked"]
    )
    assert tokens["海岛区大屏"]["revoked"]
    with engine.connect() as conn:
        campaigns = {c.name: c for c in load_campaigns(conn)}
        keys = {k.label: k for k in conn.execute(select(ApiKey))}
        units = set(conn.execute(select(AdminUnit.id)).scalars())
        actions = list(conn.execute(select(AuditLog.action).order_by(AuditLog.id)).scalars())
    assert set(campaigns) == {"沿海整治"} and campaigns["沿海整治"].area_ids == {
        _unit_id(engine, "880001001")
    }
    assert keys["港城12345"].revoked_at is None and keys["港城12345"].scope_unit_id == _unit_id(
        engine, "880001001"
    )
    assert keys["海岛小程序"].revoked_at is not None and keys["海岛小程序"].scope_unit_id in units
    assert all(t["scope_unit_id"] in units for t in tokens.values() if not t["revoked"])
    assert actions.count("boundaries.carry_settings") == 2 and actions.count("api_key.revoke") == 1
    assert actions[-1] == "boundaries.import"
