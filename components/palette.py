"""The display palette, the one place that knows the colours: 平安码, the five risk classes, event counts.

Rules never depend on a colour; pages and widgets take every colour from here, and the one legend
markup (:func:`legend_html`) serves the risk map and the wall screen alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum

from domain.risk import RiskClass
from domain.vocabulary import SafetyCode

RGB = tuple[int, int, int]

#: 平安码 colours (deck.gl dots, folium markers, charts, badges).
SAFETY_CODE_RGB: dict[SafetyCode, RGB] = {
    SafetyCode.RED: (230, 0, 18),
    SafetyCode.YELLOW: (255, 193, 7),
    SafetyCode.GREEN: (0, 168, 89),
}
#: Text colour readable on each 平安码 badge.
TEXT_ON: dict[SafetyCode, str] = {
    SafetyCode.RED: "#ffffff",
    SafetyCode.YELLOW: "#1f2328",
    SafetyCode.GREEN: "#ffffff",
}
#: The five risk classes of the 五色图.
CLASS_RGB: dict[RiskClass, RGB] = {
    RiskClass.RED: (214, 39, 40),
    RiskClass.ORANGE: (255, 127, 14),
    RiskClass.YELLOW: (240, 200, 30),
    RiskClass.BLUE: (31, 119, 180),
    RiskClass.GREEN: (44, 160, 44),
}
#: Grey for "no colour yet" (a venue never inspected, an area without data).
NO_DATA_RGB: RGB = (128, 128, 128)
CLASS_RGB[RiskClass.NO_DATA] = NO_DATA_RGB  # 暂无数据: grey, never green
#: Text colour readable on each risk class badge.
TEXT_ON_CLASS: dict[RiskClass, str] = {c: "#ffffff" for c in RiskClass} | {RiskClass.YELLOW: "#1f2328"}
#: Sequential ramp (ColorBrewer YlOrRd, 6 classes) for event counts, distinct from the risk colours.
EVENT_RAMP: list[RGB] = [
    (255, 255, 178),
    (254, 217, 118),
    (254, 178, 76),
    (253, 141, 60),
    (240, 59, 32),
    (189, 0, 38),
]

#: Sequential ramp (ColorBrewer BuPu, 5 classes) for the forecast hazard density layer (隐患预测):
#: distinct from the risk classes and the event ramp it may be drawn with.
FORECAST_RAMP: list[RGB] = [
    (237, 248, 251),
    (179, 205, 227),
    (140, 150, 198),
    (136, 86, 167),
    (129, 15, 124),
]


def hex_color(key: Enum | RGB) -> str:
    """``#rrggbb`` of a 平安码, a risk class or an RGB triple (for charts and CSS)."""
    if isinstance(key, SafetyCode):
        rgb = SAFETY_CODE_RGB[key]
    elif isinstance(key, RiskClass):
        rgb = CLASS_RGB[key]
    else:
        rgb = key  # type: ignore[assignment]
    r, g, b = rgb
    return f"#{r:02x}{g:02x}{b:02x}"


def legend_html(counts: Mapping[RiskClass, int], *, swatch_px: int = 14) -> str:
    """The five colours and 暂无数据 (grey) with the count of shown areas in each (no user text inside)."""
    return " ".join(
        f"<span class='legend-item' style='display:inline-block;margin-right:14px'>"
        f"<span style='display:inline-block;width:{swatch_px}px;height:{swatch_px}px;"
        f"background:{hex_color(c)};vertical-align:middle;margin-right:4px;border-radius:2px'></span>"
        f"{c.label} <b>{int(counts.get(c, 0))}</b></span>"
        for c in RiskClass
    )
