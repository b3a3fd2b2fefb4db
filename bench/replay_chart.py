"""The replay's curve as a chart for docs/safety-code.md: ``python -m bench.replay_chart town city``.

Reads the ``forecast_replay_s<seed>_r<rate>_<policy>_…`` figures that ``make bench`` recorded in
bench/results/<scale>.json and writes docs/images/replay_<scale>.svg: two panels against visits per
venue per month (log scale), one line per policy and seed (seed 1 solid, others dashed) — mean days from
onset to discovery with unfound hazards counted to the end of the period, and the share of hidden
onsets found. Plain SVG written here (no plotting library is a dependency; the docs stay offline).
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections import defaultdict
from html import escape
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POLICIES = {  # name in the figures → label, colour
    "round_robin": ("round-robin 轮巡", "#7f7f7f"),
    "risk": ("colour cadence 按码频次", "#d62728"),
    "forecast": ("forecast 预测引导", "#1f77b4"),
    "oracle": ("oracle 上限 (hidden rates)", "#2ca02c"),
}
KEY = re.compile(r"forecast_replay_s(\d+)_r([0-9.]+)_(\w+?)_(days_to_find_censored|found)$")
W, H, PAD = 360, 240, 48  # one panel, its inner padding


def curves(figures: dict) -> tuple[dict, dict[int, float]]:
    """{(seed, policy): {rate: {"days": …, "found": …}}} and each seed's hidden onsets."""
    out: dict = defaultdict(lambda: defaultdict(dict))
    for k, v in figures.items():
        m = KEY.match(k)
        if m and m.group(3) in POLICIES:
            what = "days" if m.group(4).startswith("days") else "found"
            out[(int(m.group(1)), m.group(3))][float(m.group(2))][what] = float(v)
    onsets = {
        int(m.group(1)): float(v)
        for k, v in figures.items()
        if (m := re.match(r"forecast_s(\d+)_replay_hazards_count$", k))
    }
    return out, onsets


def _panel(x0: float, title: str, series: list[tuple[str, str, list[tuple[float, float]]]], unit: str) -> str:
    rates = sorted({r for _, _, pts in series for r, _ in pts})
    if not rates:
        return (
            f'<text x="{x0 + W / 2}" y="18" text-anchor="middle" font-weight="bold">{escape(title)}</text>'
            f'<text x="{x0 + W / 2}" y="{H / 2}" text-anchor="middle">no replay recorded</text>'
        )
    ys = [y for _, _, pts in series for _, y in pts]
    lo, hi = 0.0, (100.0 if unit == "%" else math.ceil(max(ys) * 1.05 / 10) * 10) if ys else 1.0
    lx = [math.log10(r) for r in rates]
    span = (max(lx) - min(lx)) or 1.0

    def px(r: float) -> float:
        return x0 + PAD + (math.log10(r) - min(lx)) / span * (W - 1.5 * PAD)

    def py(y: float) -> float:
        return 30 + (1 - (y - lo) / (hi - lo)) * (H - 30 - PAD)

    parts = [f'<text x="{x0 + W / 2}" y="18" text-anchor="middle" font-weight="bold">{escape(title)}</text>']
    for r in rates:
        parts.append(
            f'<line x1="{px(r):.1f}" y1="{py(hi):.1f}" x2="{px(r):.1f}" y2="{py(lo):.1f}" stroke="#eee"/>'
        )
        parts.append(f'<text x="{px(r):.1f}" y="{H - PAD + 16}" text-anchor="middle">{r:g}</text>')
    for k in range(5):
        y = lo + (hi - lo) * k / 4
        parts.append(f'<text x="{x0 + PAD - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{y:.0f}{unit}</text>')
    parts.append(
        f'<text x="{x0 + W / 2}" y="{H - 8}" text-anchor="middle">visits per venue per month 每场所每月检查次数</text>'
    )
    for colour, dash, pts in series:
        path = " ".join(f"{px(r):.1f},{py(y):.1f}" for r, y in pts)
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"'
            + (' stroke-dasharray="5,4"' if dash else "")
            + "/>"
        )
    return "\n".join(parts)


def chart(scale: str, figures: dict) -> str:
    data, onsets = curves(figures)
    days, found = [], []
    drawn = {seed for (seed, _), by_rate in data.items() if len(by_rate) > 1}  # a line needs two rates
    for (seed, policy), by_rate in sorted(data.items()):
        if seed not in drawn:
            continue
        colour = POLICIES[policy][1]
        pts = sorted(by_rate.items())
        dash = "dash" if seed != 1 else ""
        days.append((colour, dash, [(r, v["days"]) for r, v in pts if "days" in v]))
        if seed in onsets:
            found.append(
                (colour, dash, [(r, 100 * v["found"] / onsets[seed]) for r, v in pts if "found" in v])
            )
    seeds = sorted(drawn)
    legend = "".join(
        f'<rect x="{10 + 178 * i}" y="{H + 8}" width="14" height="4" fill="{c}"/>'
        f'<text x="{28 + 178 * i}" y="{H + 14}">{escape(label)}</text>'
        for i, (label, c) in enumerate(POLICIES.values())
    )
    note = f"{scale}: seed {', '.join(map(str, seeds))} (seed 1 solid, seed 2 dashed); 90 days; bench/results/{scale}.json"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * W}" height="{H + 44}" font-family="sans-serif"'
        f' font-size="11"><rect width="100%" height="100%" fill="white"/>\n'
        + _panel(0, "mean days onset → found (unfound to the end)", days, "")
        + "\n"
        + _panel(W, "share of hidden onsets found", found, "%")
        + f'\n{legend}<text x="20" y="{H + 34}" fill="#555">{escape(note)}</text></svg>\n'
    )


def main(scales: list[str]) -> None:
    out = ROOT / "docs" / "images"
    out.mkdir(parents=True, exist_ok=True)
    for scale in scales:
        figures = json.loads((ROOT / "bench" / "results" / f"{scale}.json").read_text(encoding="utf-8"))
        (out / f"replay_{scale}.svg").write_text(chart(scale, figures), encoding="utf-8")
        print(f"written: docs/images/replay_{scale}.svg")


if __name__ == "__main__":
    main(sys.argv[1:] or ["town"])
