"""Places to search on the 随手拍 map: venues by name inside some grids (issue 17).

Only a venue's name, address and position leave here. Citizens search the public kinds of place (shops,
crowded venues, sites, firms); a home let to tenants (出租房), a key security site (重点治安场所) or a
hazardous-chemicals plant (危化品生产企业) is found by staff only.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from sqlalchemy import Connection, select

from db.models import Venue
from domain.vocabulary import VenueCategory

PUBLIC_CATEGORIES = frozenset(
    {
        VenueCategory.STREET_SHOP,
        VenueCategory.CROWDED_VENUE,
        VenueCategory.CONSTRUCTION_SITE,
        VenueCategory.GENERAL_FIRM,
        VenueCategory.LABOUR_INTENSIVE,
    }
)
COLUMNS = ["id", "name", "address", "lon", "lat", "grid_id"]


def venues_in(
    conn: Connection, grid_ids: Sequence[int], *, public_only: bool = True, limit: int = 3000
) -> pd.DataFrame:
    """Active venues in ``grid_ids`` by name (``COLUMNS``), the public kinds only unless told otherwise."""
    if not grid_ids:
        return pd.DataFrame(columns=COLUMNS)
    query = select(Venue.id, Venue.name, Venue.address, Venue.lon, Venue.lat, Venue.grid_id).where(
        Venue.grid_id.in_([int(g) for g in grid_ids]), Venue.is_active
    )
    if public_only:
        query = query.where(Venue.category.in_(PUBLIC_CATEGORIES))
    rows = conn.execute(query.order_by(Venue.name, Venue.id).limit(limit)).all()
    return pd.DataFrame(rows, columns=COLUMNS)
