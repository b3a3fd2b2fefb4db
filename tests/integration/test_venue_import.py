"""Venue import: UTF-8 / BOM / GBK CSV and XLSX read alike; a bad file lists every bad row and writes nothing."""

from __future__ import annotations

import io
from datetime import datetime

import pytest
from openpyxl import Workbook
from sqlalchemy import func, insert, select

from db.models import AdminUnit, InspectorGrid, SafetyCodeChange, User, Venue
from db.uow import UnitOfWork
from domain.access import CurrentUser
from domain.vocabulary import Role, SafetyCode, VenueCategory
from services.locate import forget_index
from services.tabular import RowError, decode_csv
from services.venue_import import ImportRejected, import_venues, read_rows, template_csv
from tests.builders import X0, Y0, D, make_square_area

NOW = datetime(2026, 11, 21, 10, 0)
HEADER = ["名称", "类别", "地址", "纬度", "经度", "网格编码", "负责人", "联系电话"]
EAST1 = "990001001001001"


def _point(grid: int) -> tuple[str, str]:
    """(纬度, 经度) as text inside grid ``grid`` (0..3) of the square area."""
    return f"{Y0 + 0.5 * D:.6f}", f"{X0 + (grid + 0.5) * D:.6f}"


GOOD = [
    ["老王杂货店", "沿街店铺", "方城路1号", *_point(0), EAST1, "王建国", "13800000001"],
    ["张三出租房", "出租房", "方城路2号", *_point(1), "", "张三", ""],
    ["方城化工有限公司", "危化品生产企业", "工业园3号", *_point(3), "", "李四", "0570-1234567"],
]


@pytest.fixture
def store(empty_engine):
    forget_index()
    with empty_engine.begin() as conn:
        ids = make_square_area(conn)
        uid = conn.execute(
            insert(User).returning(User.id),
            {
                "username": "wg",
                "display_name": "网格员",
                "role": Role.INSPECTOR,
                "scope_unit_id": ids["990001001"],
                "created_at": NOW,
            },
        ).scalar_one()
        conn.execute(insert(InspectorGrid), {"user_id": uid, "grid_id": ids[EAST1]})
    leader = CurrentUser(99, "leader", "领导", Role.TOWNSHIP_LEADER, ids["990001001"])
    return empty_engine, ids, leader, uid


def _csv(rows, header=HEADER) -> str:
    out = io.StringIO()
    import csv

    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(header)
    w.writerows(rows)
    return out.getvalue()


def _num(text: str):
    """Coordinates as numbers, as Excel stores them (text kept when it is not a number)."""
    try:
        return float(text)
    except ValueError:
        return text


def _xlsx(rows, header=HEADER) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.append(header)
    for r in rows:
        ws.append([_num(c) if k in (3, 4) else c for k, c in enumerate(r)])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _import(engine, data: bytes, name: str, user):
    return import_venues(UnitOfWork(engine), data=data, filename=name, now=NOW, user=user)


def _venues(engine):
    with engine.connect() as conn:
        return conn.execute(
            select(
                Venue.name,
                Venue.category,
                Venue.safety_code,
                Venue.next_due_on,
                Venue.grid_id,
                Venue.inspector_id,
                Venue.responsible_phone,
            ).order_by(Venue.id)
        ).all()


@pytest.mark.parametrize(
    "encode",
    [
        lambda t: t.encode("utf-8"),
        lambda t: t.encode("utf-8-sig"),
        lambda t: t.encode("gbk"),
        lambda t: t.encode("gb18030"),
    ],
    ids=["utf-8", "utf-8-bom", "gbk", "gb18030"],
)
def test_csv_in_every_encoding_imports_the_same_venues(store, encode):
    engine, ids, leader, uid = store
    result = _import(engine, encode(_csv(GOOD)), "场所.csv", leader)
    assert result.created == 3
    rows = _venues(engine)
    assert [r.name for r in rows] == ["老王杂货店", "张三出租房", "方城化工有限公司"]
    assert [r.category for r in rows] == [
        VenueCategory.STREET_SHOP,
        VenueCategory.RENTAL_HOUSING,
        VenueCategory.HAZCHEM,
    ]
    assert {r.safety_code for r in rows} == {SafetyCode.GREEN}
    assert {r.next_due_on for r in rows} == {NOW.date()}
    assert rows[0].grid_id == ids[EAST1] and rows[0].inspector_id == uid and rows[2].inspector_id is None
    assert rows[1].responsible_phone is None and rows[2].responsible_phone == "0570-1234567"
    with engine.connect() as conn:
        reasons = conn.execute(select(SafetyCodeChange.reason).order_by(SafetyCodeChange.id)).scalars().all()
    assert reasons[0] == "首次赋码：批量导入（沿街店铺，绿码）" and len(reasons) == 3


def test_a_grid_code_typed_with_full_width_digits_or_a_space_is_the_grid(store):
    """A grid code typed with a Chinese input method (full-width digits) or pasted with a space inside was
    told 网格编码不存在 for a grid that is there."""
    engine, ids, leader, _ = store
    typed = EAST1.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    rows = [[*GOOD[0][:5], typed, *GOOD[0][6:]], [*GOOD[1][:5], f"{EAST1[:9]} {EAST1[9:]}", *GOOD[1][6:]]]
    rows[1][3:5] = _point(0)
    result = _import(engine, _csv(rows).encode(), "场所.csv", leader)
    assert result.created == 2
    assert {r.grid_id for r in _venues(engine)} == {ids[EAST1]}


def test_xlsx_imports_and_an_optional_code_column_sets_the_first_code(store):
    engine, _, leader, _ = store
    rows = [[*r, code] for r, code in zip(GOOD, ["红码", "", "黄"], strict=True)]
    result = _import(engine, _xlsx(rows, [*HEADER, "平安码"]), "场所.xlsx", leader)
    assert result.created == 3
    assert [r.safety_code for r in _venues(engine)] == [SafetyCode.RED, SafetyCode.GREEN, SafetyCode.YELLOW]


def test_a_bad_file_lists_every_bad_row_with_its_field_and_nothing_is_written(store):
    engine, _, leader, _ = store
    bad = [
        GOOD[0],  # row 2: fine
        ["", "饭店", "方城路9号", "abc", "118.805", "", "赵六", "12-ab"],  # row 3
        ["远方小店", "沿街店铺", "远方路1号", "30.0", "120.0", "", "钱七", ""],  # row 4: outside every grid
        ["错格小店", "沿街店铺", "方城路5号", *_point(2), EAST1, "孙八", ""],  # row 5: grid code mismatch
        [],  # row 6: empty, skipped
        ["老王杂货店", "沿街店铺", "方城路1号", *_point(0), "", "王建国", ""],  # row 7: duplicate of row 2
        ["无名格店", "一般企业", "方城路6号", *_point(1), "990009999", "", ""],  # row 8
    ]
    for data, name in ((_csv(bad).encode("gbk"), "bad.csv"), (_xlsx(bad), "bad.xlsx")):
        with pytest.raises(ImportRejected) as exc:
            _import(engine, data, name, leader)
        got = {(p.row, p.field) for p in exc.value.problems}
        assert got == {
            (3, "名称"),
            (3, "类别"),
            (3, "纬度"),
            (3, "联系电话"),
            (4, "经纬度"),
            (5, "网格编码"),
            (7, "名称"),
            (8, "网格编码"),
            (8, "负责人"),
        }, name
        reasons = {(p.row, p.field): p.reason for p in exc.value.problems}
        assert reasons[(3, "类别")].startswith("“饭店”不是八类场所之一")
        assert reasons[(4, "经纬度")] == "位置（120.0, 30.0）不在任何网格内"
        assert reasons[(5, "网格编码")] == "与经纬度所在网格（990001001002001）不一致"
        assert reasons[(7, "名称")] == "与第 2 行重复（名称和地址相同）"
        assert reasons[(8, "网格编码")] == "网格编码“990009999”不存在"
        assert str(exc.value) == f"导入失败：共 {len(got)} 处问题，未导入任何场所"
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Venue)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(SafetyCodeChange)).scalar_one() == 0


def test_headers_scope_duplicates_in_the_store_and_roles_are_checked(store):
    engine, ids, leader, _ = store
    with pytest.raises(ImportRejected) as exc:
        _import(engine, _csv(GOOD, ["名称", "类别", "地址"]).encode(), "a.csv", leader)
    assert {(p.row, p.field) for p in exc.value.problems} == {
        (1, "纬度"),
        (1, "经度"),
        (1, "负责人"),
        (1, "联系电话"),
    }
    village = CurrentUser(98, "v", "村干部", Role.TOWNSHIP_LEADER, ids["990001001001"])
    with pytest.raises(ImportRejected) as exc:
        _import(engine, _csv(GOOD).encode(), "a.csv", village)
    assert exc.value.problems == [RowError(4, "经纬度", "位置不在您的管辖范围内")]
    inspector = CurrentUser(97, "i", "检查员", Role.INSPECTOR, ids["990001001"])
    with pytest.raises(ImportRejected):
        _import(engine, _csv(GOOD).encode(), "a.csv", inspector)
    _import(engine, _csv(GOOD[:1]).encode(), "a.csv", leader)
    with pytest.raises(ImportRejected) as exc:
        _import(engine, _csv(GOOD[:1]).encode(), "a.csv", leader)
    assert exc.value.problems == [RowError(2, "名称", "系统中已有同名同地址的场所")]
    _import(engine, _csv(GOOD[2:]).encode(), "a.csv", leader)  # a venue of the east village
    with pytest.raises(ImportRejected) as exc:  # the west village's leader learns nothing of it
        _import(engine, _csv(GOOD[2:]).encode(), "a.csv", village)
    assert exc.value.problems == [RowError(2, "经纬度", "位置不在您的管辖范围内")]
    with pytest.raises(ImportRejected) as exc:
        _import(engine, b"\x89PNG...", "a.png", leader)
    assert exc.value.problems[0].reason == "仅支持 CSV 或 XLSX 文件"


def test_the_template_opens_in_excel_and_reads_back_as_a_file_would(store):
    data = template_csv()
    assert data.startswith(b"\xef\xbb\xbf")
    header, rows = read_rows(data, "模板.csv")
    assert header == HEADER and rows[0][0] == 2
    assert decode_csv("名称".encode("gbk")) == "名称"
    with pytest.raises(ImportRejected) as exc:
        read_rows(b"\xff\xfe\x00\xd8bad", "a.csv")
    assert exc.value.problems == [RowError(0, "文件", "无法识别文件编码，请另存为 UTF-8 或 GBK 编码的 CSV")]


def test_an_import_places_venues_in_grids_found_by_location(store):
    engine, _, leader, _ = store
    _import(engine, _csv(GOOD).encode(), "a.csv", leader)
    with engine.connect() as conn:
        codes = (
            conn.execute(select(AdminUnit.code).join(Venue, Venue.grid_id == AdminUnit.id).order_by(Venue.id))
            .scalars()
            .all()
        )
    assert codes == [EAST1, "990001001001002", "990001001002002"]


def test_a_csv_cell_with_a_nul_character_is_a_problem_of_its_row_and_field_and_nothing_is_written(store):
    """A NUL in a CSV cell (XLSX cannot hold one; PostgreSQL refuses it in text: the import ended in a store
    error, SQLite stored it)."""
    engine, _ids, leader, _uid = store
    rows = [list(r) for r in GOOD]
    rows[1][2] = "方城路\x002号"
    with pytest.raises(ImportRejected) as exc:
        _import(engine, _csv(rows).encode("utf-8"), "venues.csv", leader)
    assert [(p.row, p.field) for p in exc.value.problems] == [(3, "地址")]
    assert "控制字符" in exc.value.problems[0].reason
    assert _venues(engine) == []


def test_the_template_example_lies_in_the_users_own_area_and_imports_as_it_is(store):
    """The example row is placed in the first grid of the user's area (not the demo city's streets), so
    a county's template, uploaded unchanged, places its one example venue in that county."""
    from services.geography import example_place, load_tree

    engine, ids, leader, _ = store
    with engine.connect() as conn:
        place = example_place(load_tree(conn), ids["990001001"])
    assert place is not None and place.grid_code == EAST1
    assert template_csv(None).decode("utf-8-sig").splitlines()[1].count(",,") >= 2  # no area: no place
    _import(engine, template_csv(place), "模板.csv", leader)
    with engine.connect() as conn:
        grid = conn.execute(
            select(AdminUnit.code).join(Venue, Venue.grid_id == AdminUnit.id).where(Venue.name.like("示例%"))
        ).scalar_one()
    assert grid == EAST1


def test_two_imports_at_the_same_moment_both_go_in_with_their_own_codes(store):
    """Two leaders press 检查并导入 at once (PostgreSQL runs them side by side): both were numbered from
    the same highest code and one ended in a raw unique-key error; they take turns now."""
    import threading

    engine, _, leader, _ = store
    files = [_csv(GOOD[:2]).encode(), _csv(GOOD[2:]).encode()]
    start, told = threading.Barrier(2), []

    def run(data: bytes) -> None:
        start.wait()
        try:
            told.append(_import(engine, data, "v.csv", leader).created)
        except Exception as exc:
            told.append(repr(exc))

    threads = [threading.Thread(target=run, args=(f,)) for f in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(told) == [1, 2], told
    with engine.connect() as conn:
        codes = conn.execute(select(Venue.code)).scalars().all()
    assert len(codes) == len(set(codes)) == 3


def test_a_file_from_a_chinese_map_platform_is_converted_from_gcj02_and_stored_as_wgs84(store):
    """高德/腾讯 give GCJ-02, hundreds of metres off GPS: read as WGS84, a third of a county's venues
    landed in the next grid. With 坐标系 GCJ-02 each is converted once and stored as WGS84."""
    from geo.crs import wgs84_to_gcj02

    engine, _, leader, _ = store
    true_lon, true_lat = X0 + 0.2 * D, Y0 + 0.5 * D  # grid 0, near its western edge
    g_lon, g_lat = wgs84_to_gcj02(true_lon, true_lat)
    row = ["高德取点店", "沿街店铺", "方城路9号", f"{g_lat:.7f}", f"{g_lon:.7f}", "", "王五", ""]
    data = _csv([row]).encode()
    with pytest.raises(ValueError, match="坐标系只能是"):
        import_venues(UnitOfWork(engine), data=data, filename="v.csv", now=NOW, user=leader, crs="bd09")
    import_venues(UnitOfWork(engine), data=data, filename="v.csv", now=NOW, user=leader, crs="gcj02")
    with engine.connect() as conn:
        lon, lat, grid = conn.execute(select(Venue.lon, Venue.lat, Venue.grid_id)).one()
        grid_code = conn.execute(select(AdminUnit.code).where(AdminUnit.id == grid)).scalar_one()
    assert abs(lon - true_lon) < 1e-6 and abs(lat - true_lat) < 1e-6
    assert grid_code == EAST1


def test_phones_and_coordinates_as_people_type_them_are_read_and_extra_columns_are_named(store):
    """The venue import refused 138 0000 0000, ＋86 and full-width digits the event import takes, and a
    full-width point in a coordinate; a column not in the template was dropped without a word."""
    engine, _ids, leader, _uid = store
    lat, lon = _point(1)
    wide = str.maketrans("0123456789.", "０１２３４５６７８９．")
    rows = [
        ["甲店", "沿街店铺", "方城路1号", *_point(0), "", "王", "138 0000 0001"],
        ["乙店", "沿街店铺", "方城路2号", lat.translate(wide), lon, "", "张", "+86 13800000002"],
        ["丙店", "沿街店铺", "方城路3号", *_point(2), "", "李", "１３８０００００００３"],
        ["丁店", "沿街店铺", "方城路4号", *_point(3), "", "赵", "0570-1234567"],
    ]
    data = _csv([[*r, "备用"] for r in rows], [*HEADER, "备注"]).encode()
    result = _import(engine, data, "v.csv", leader)
    assert result.created == 4 and result.notes == ("以下列不是模板中的列，未导入：备注",)
    phones = [v.responsible_phone for v in _venues(engine)]
    assert phones == ["13800000001", "13800000002", "13800000003", "0570-1234567"]
    with pytest.raises(ImportRejected) as bad:
        _import(
            engine,
            _csv([["戊店", "沿街店铺", "方城路5号", *_point(0), "", "钱", "电话见附件"]]).encode(),
            "b.csv",
            leader,
        )
    assert [(p.row, p.field) for p in bad.value.problems] == [(2, "联系电话")]


def test_a_venue_whose_latitude_and_longitude_are_swapped_is_told_so(store):
    engine, _ids, leader, _uid = store
    lat, lon = _point(0)
    with pytest.raises(ImportRejected) as bad:
        _import(
            engine,
            _csv([["甲店", "沿街店铺", "方城路1号", lon, lat, "", "王", ""]]).encode(),
            "s.csv",
            leader,
        )
    assert [(p.row, p.field) for p in bad.value.problems] == [(2, "纬度")]
    assert bad.value.problems[0].reason.endswith("：纬度和经度可能填反了")
