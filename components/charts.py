"""Figures built from service frames (plotly), the same way on every page."""

from __future__ import annotations

import itertools

import pandas as pd
import plotly.graph_objects as go

#: The stages of today's flow, left to right (columns of :func:`services.event_views.todays_flow`).
FLOW_STAGES = ["source", "level", "department", "outcome"]


def sankey(flow: pd.DataFrame, stages: list[str] = FLOW_STAGES, height: int = 360) -> go.Figure:
    """A Sankey of counted rows (``n``) through ``stages``: one node per value, one link per adjacent pair."""
    labels = list(dict.fromkeys(v for c in stages for v in flow[c]))
    index = {v: i for i, v in enumerate(labels)}
    links = pd.concat(
        [
            flow.groupby([a, b])["n"].sum().reset_index().set_axis(["s", "t", "n"], axis=1)
            for a, b in itertools.pairwise(stages)
        ]
    )
    fig = go.Figure(
        go.Sankey(
            node={"label": labels, "pad": 12},
            link={"source": links["s"].map(index), "target": links["t"].map(index), "value": links["n"]},
        )
    )
    fig.update_layout(height=height, margin={"l": 8, "r": 8, "t": 8, "b": 8}, font={"size": 12})
    return fig
