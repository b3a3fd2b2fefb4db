"""The replay chart (bench/replay_chart.py) draws what the figures hold: one line per seed and policy."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from bench.replay_chart import chart, curves

SVG = "{http://www.w3.org/2000/svg}"


def _figures() -> dict:
    out: dict = {"forecast_s1_replay_hazards_count": 200, "forecast_s2_replay_hazards_count": 100}
    for seed in (1, 2):
        for rate in (0.1, 1, 4):
            for k, policy in enumerate(("round_robin", "risk", "forecast", "oracle")):
                q = f"forecast_replay_s{seed}_r{rate:g}_{policy}_"
                out[q + "days_to_find_censored"] = 40 / rate - k
                out[q + "found"] = min(100, 10 * rate + k) * seed
    out["forecast_replay_s3_r0.2_forecast_days_to_find_censored"] = 30.0  # one rate: no line to draw
    return out


def test_every_seed_and_policy_is_one_line_over_every_rate():
    data, onsets = curves(_figures())
    assert onsets == {1: 200.0, 2: 100.0}
    assert len(data) == 9 and all(
        sorted(by_rate) == [0.1, 1.0, 4.0] for k, by_rate in data.items() if k[0] < 3
    )
    assert data[(2, "forecast")][4.0] == {"days": 8.0, "found": 84.0}
    root = ET.fromstring(chart("town", _figures()))
    lines = root.findall(f"{SVG}polyline")
    assert len(lines) == 16  # 8 in each panel; seed 3's single rate is not a line
    assert "seed 1, 2 (" in ET.tostring(root, encoding="unicode")
    assert all(len(line.get("points", "").split()) == 3 for line in lines)
    assert sum(1 for line in lines if line.get("stroke-dasharray")) == 8  # seed 2 dashed


def test_a_result_file_without_replays_draws_no_line():
    root = ET.fromstring(chart("city", {"forecast_s1_auc": 0.66}))
    assert root.findall(f"{SVG}polyline") == []
