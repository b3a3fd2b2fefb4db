"""Recording inspections through the store: code transitions from stored facts, scope, validation, history."""

from __future__ import annotations

import io
import json
from datetime import date, datetime, timedelta

import pytest
from PIL import Image
from sqlalchemy import func, insert, select, update

from db.engine import session_factory
from db.models import (
    AdminUnit,
    Attachment,
    Event,
    Hazard,
    Inspection,
    InspectorGrid,
    SafetyCodeChange,
    User,
    Venue,
)
from db.uow import UnitOfWork
from domain.access import CurrentUser
from domain.safety_code import checklist_for
from domain.vocabulary import EventCategory, EventSource, HazardStatus, InspectionResult, Role, SafetyCode
from services.access import OutOfScope
from services.events import add_event
from services.inspections import (
    InvalidInspection,
    NewHazard,
    record_inspection,
    rectify_hazard,
    venue_card_for,
    venue_history,
)
from services.locate import forget_index
from tests.builders import grid_centre, make_green_venue, make_square_area

T0 = datetime(2026, 11, 21, 9, 0)
D0 = T0.date()
EAST_GRID, WEST_GRID = "990001001001001", "990001001002002"


def _user(
    conn, username: str, role: Role, scope_code: str, grids: tuple[str, ...] = (), phone=None
) -> CurrentUser:
    ids = dict(conn.execute(select(AdminUnit.code, AdminUnit.id)).all())
    uid = conn.execute(
        insert(User).returning(User.id),
        {
            "username": username,
            "display_name": f"{username}姓名",
            "role": role,
            "scope_unit_id": ids[scope_code],
            "phone": phone,
            "created_at": datetime(2026, 1, 1),
        },
    ).scalar_one()
    for g in grids:
        conn.execute(insert(InspectorGrid), {"user_id": uid, "grid_id": ids[g]})
    return CurrentUser(uid, username, f"{username}姓名", role, ids[scope_code])


@pytest.fixture
def store(empty_engine):
    """The square area, an inspector of its first grid, one inspector elsewhere, a leader, and one green shop."""
    forget_index()
    with empty_engine.begin() as conn:
        make_square_area(conn)
        venue_id = make_green_venue(conn)
        conn.execute(update(Venue).values(responsible_phone="13812345678", next_due_on=D0))
        insp = _user(conn, "insp", Role.INSPECTOR, "990001001001", (EAST_GRID,))
        other = _user(conn, "other", Role.INSPECTOR, "990001001002", (WEST_GRID,))
        leader = _user(conn, "leader", Role.TOWNSHIP_LEADER, "990001001")
        admin = _user(conn, "admin", Role.ADMIN, "990000")
    return empty_engine, venue_id, {"insp": insp, "other": other, "leader": leader, "admin": admin}


def _all(outcome: str = "pass", **overrides: str) -> dict[str, str]:
    return {i.key: overrides.get(i.key, outcome) for i in checklist_for("street_shop")}


def _record(engine, venue_id, user, at: datetime, checklist=None, hazards=(), rectified=()):
    return record_inspection(
        UnitOfWork(engine),
        user=user,
        venue_id=venue_id,
        now=at,
        checklist=checklist or _all(),
        hazards=list(hazards),
        rectified=list(rectified),
    )


def _venue(engine, venue_id):
    with engine.connect() as conn:
        return conn.execute(
            select(Venue.safety_code, Venue.next_due_on, Venue.last_inspected_on).where(Venue.id == venue_id)
        ).one()


def _changes(engine, venue_id):
    with engine.connect() as conn:
        return conn.execute(
            select(SafetyCodeChange.from_code, SafetyCodeChange.to_code, SafetyCodeChange.reason)
            .where(SafetyCodeChange.venue_id == venue_id)
            .order_by(SafetyCodeChange.id)
        ).all()


def _counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.__tablename__: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (Inspection, Hazard, Attachment, SafetyCodeChange)
        }


def _jpeg_with_exif() -> bytes:
    img = Image.new("RGB", (40, 30), (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {2: (30, 0, 0)}  # a GPS IFD
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif)
    return out.getvalue()


# --- transitions through stored inspections ---------------------------------------------------


def test_a_failed_inspection_with_a_major_hazard_turns_a_green_venue_red_due_the_next_day(store):
    engine, vid, u = store
    done = _record(
        engine,
        vid,
        u["insp"],
        T0,
        _all(fire_exits="fail"),
        [NewHazard("major", "消防通道堵塞", D0 + timedelta(days=3))],
    )
    assert done.result is InspectionResult.FAIL and done.changed
    assert (done.code_before, done.code_after) == (SafetyCode.GREEN, SafetyCode.RED)
    assert _venue(engine, vid) == (SafetyCode.RED, D0 + timedelta(days=1), D0)
    assert _changes(engine, vid)[-1] == (
        SafetyCode.GREEN,
        SafetyCode.RED,
        "存在未整改重大隐患1处：消防通道堵塞",
    )
    with engine.connect() as conn:
        hz = conn.execute(select(Hazard.inspection_id, Hazard.status, Hazard.found_on, Hazard.deadline)).one()
        stored = json.loads(conn.execute(select(Inspection.checklist_json)).scalar_one())
    assert hz == (done.inspection_id, HazardStatus.OPEN, D0, D0 + timedelta(days=3))
    assert stored == _all(fire_exits="fail")


def test_recovery_is_stepwise_red_to_yellow_after_a_rectified_recheck_then_green_after_two_clean(store):
    engine, vid, u = store
    first = _record(
        engine, vid, u["insp"], T0, _all(), [NewHazard("major", "消防通道堵塞", D0 + timedelta(days=3))]
    )
    assert first.code_after is SafetyCode.RED  # a hazard makes the result 不合格 even with every item passed
    hazard_id = first.hazard_ids[0]
    # A clean visit while the major hazard is open: still red, due daily.
    d1 = _record(engine, vid, u["insp"], T0 + timedelta(days=1))
    assert d1.code_after is SafetyCode.RED and d1.next_due_on == D0 + timedelta(days=2)
    # The re-check confirms the fix and passes: one step, to yellow (weekly).
    d2 = _record(engine, vid, u["insp"], T0 + timedelta(days=2), rectified=[hazard_id])
    assert (d2.code_before, d2.code_after) == (SafetyCode.RED, SafetyCode.YELLOW)
    assert d2.rectified_ids == (hazard_id,) and d2.next_due_on == D0 + timedelta(days=9)
    assert "由红码转为黄码" in d2.reason
    # The visit that lifted it does not count: two more clean ones turn it green.
    d3 = _record(engine, vid, u["insp"], T0 + timedelta(days=9))
    assert d3.code_after is SafetyCode.YELLOW and "连续合格检查1次" in d3.reason
    d4 = _record(engine, vid, u["insp"], T0 + timedelta(days=16))
    assert d4.code_after is SafetyCode.GREEN and d4.next_due_on == D0 + timedelta(days=46)
    assert [(a, b) for a, b, _ in _changes(engine, vid)] == [
        (SafetyCode.GREEN, SafetyCode.RED),
        (SafetyCode.RED, SafetyCode.YELLOW),
        (SafetyCode.YELLOW, SafetyCode.GREEN),
    ]
    with engine.connect() as conn:
        assert conn.execute(select(Hazard.status, Hazard.rectified_on)).one() == (
            HazardStatus.RECTIFIED,
            D0 + timedelta(days=2),
        )


def test_a_rectification_alone_does_not_lift_a_red_venue_the_recheck_does(store):
    engine, vid, u = store
    first = _record(
        engine, vid, u["insp"], T0, _all(), [NewHazard("major", "电线私拉乱接", D0 + timedelta(days=2))]
    )
    decision = rectify_hazard(
        UnitOfWork(engine),
        hazard_id=first.hazard_ids[0],
        on=D0 + timedelta(days=1),
        now=T0 + timedelta(days=1),
        user=u["insp"],
    )
    assert decision.code is SafetyCode.RED and "复查合格后方可转为黄码" in decision.reason
    assert _record(engine, vid, u["insp"], T0 + timedelta(days=1)).code_after is SafetyCode.YELLOW
    with pytest.raises(InvalidInspection) as exc:
        rectify_hazard(
            UnitOfWork(engine),
            hazard_id=first.hazard_ids[0],
            on=D0 + timedelta(days=1),
            now=T0 + timedelta(days=1),
            user=u["insp"],
        )
    assert exc.value.problems == {"隐患": "该隐患已整改"}


def test_a_general_hazard_makes_yellow_and_an_overdue_rectification_red_at_the_next_visit(store):
    engine, vid, u = store
    d = _record(
        engine, vid, u["insp"], T0, hazards=[NewHazard("general", "灭火器过期", D0 + timedelta(days=2))]
    )
    assert d.code_after is SafetyCode.YELLOW and d.next_due_on == D0 + timedelta(days=7)
    late = _record(engine, vid, u["insp"], T0 + timedelta(days=5))
    assert late.code_after is SafetyCode.RED
    assert "隐患超期未整改1处" in late.reason


def test_three_recent_events_at_the_venue_make_a_clean_venue_yellow(store):
    engine, vid, u = store
    lon, lat = grid_centre(0)
    with session_factory(engine).begin() as s:  # set-up: the events, planted at the venue
        for k in range(3):
            e = add_event(
                s,
                source=EventSource.CITIZEN,
                category=EventCategory.PUBLIC_SECURITY,
                title=f"店内纠纷{k}",
                lon=lon,
                lat=lat,
                now=T0 - timedelta(days=k + 1),
            )
            s.flush()
            s.execute(update(Event).where(Event.id == e.id).values(venue_id=vid))
    d = _record(engine, vid, u["insp"], T0)
    assert d.code_after is SafetyCode.YELLOW and "近30天场所发生事件3起" in d.reason


def test_a_critical_failure_at_a_high_risk_venue_is_red_and_at_a_shop_yellow(store):
    engine, vid, u = store
    d = _record(engine, vid, u["insp"], T0, _all(gas_use="fail"))
    assert d.code_after is SafetyCode.YELLOW  # a street shop is not a high-risk category
    with engine.begin() as conn:
        conn.execute(update(Venue).where(Venue.id == vid).values(category="hazchem", safety_code="green"))
    hz = {i.key: "pass" for i in checklist_for("hazchem")} | {"hazmat_storage": "fail"}
    d2 = _record(engine, vid, u["insp"], T0 + timedelta(hours=1), hz)
    assert d2.code_after is SafetyCode.RED and "危险品存放规范" in d2.reason


# --- scope --------------------------------------------------------------------------------------


def test_an_inspector_may_record_only_in_their_grids_and_a_leader_not_at_all(store):
    engine, vid, u = store
    before = _counts(engine)
    for who in ("other", "leader"):
        with pytest.raises(OutOfScope):
            record_inspection(UnitOfWork(engine), user=u[who], venue_id=vid, now=T0, checklist=_all())
    assert _counts(engine) == before
    assert _record(engine, vid, u["admin"], T0).code_after is SafetyCode.GREEN  # an admin of the city may
    with engine.connect() as conn, pytest.raises(OutOfScope):
        venue_card_for(conn, u["other"], vid, D0)


# --- validation ---------------------------------------------------------------------------------


def test_every_problem_is_named_in_chinese_and_nothing_is_written(store):
    engine, vid, u = store
    before, venue_before = _counts(engine), _venue(engine, vid)
    bad_checklist = {k: v for k, v in _all().items() if k != "gas_use"} | {
        "fire_exits": "maybe",
        "bogus": "pass",
    }
    hazards = [
        NewHazard("major", "", D0 - timedelta(days=1), b"not an image"),
        NewHazard("huge", "x", None),
        NewHazard("general", "灭火器过期", date(2099, 12, 31)),  # never due: never red
    ]
    with pytest.raises(InvalidInspection) as exc:
        record_inspection(
            UnitOfWork(engine),
            user=u["insp"],
            venue_id=vid,
            now=T0,
            checklist=bad_checklist,
            hazards=hazards,
            rectified=[999],
        )
    p = exc.value.problems
    assert p["检查项：燃气使用安全"].startswith("未填写")
    assert "无效" in p["检查项：消防通道畅通"]
    assert p["检查项：bogus"] == "不是沿街店铺的检查项"
    assert p["隐患1·描述"] == "请填写隐患描述"
    assert p["隐患1·整改期限"] == f"整改期限（{D0 - timedelta(days=1)}）不能早于今天（{D0}）"
    assert "不是有效的图片文件" in p["隐患1·照片"]
    assert p["隐患2·等级"] == "请选择重大隐患或一般隐患"
    assert p["隐患2·整改期限"] == "请填写整改期限"
    assert p["隐患3·整改期限"].startswith(f"整改期限（2099-12-31）不能晚于 {D0 + timedelta(days=90)}")
    assert p["整改复查：隐患999"] == "不是本场所的隐患"
    assert _counts(engine) == before and _venue(engine, vid) == venue_before


def _heic_with_exif() -> bytes:
    img = Image.new("RGB", (40, 30), (30, 160, 30))
    exif = Image.Exif()
    exif[0x010F] = "Apple"
    exif[0x8825] = {1: "N", 2: (28.0, 56.0, 24.0), 3: "E", 4: (118.0, 52.0, 12.0)}  # GPSInfo
    out = io.BytesIO()
    img.save(out, "HEIF", exif=exif.tobytes())
    return out.getvalue()


def test_a_hazard_photo_is_stored_without_exif_and_the_card_masks_the_phone(store):
    engine, vid, u = store
    photo = _jpeg_with_exif()
    assert Image.open(io.BytesIO(photo)).getexif()
    d = _record(
        engine,
        vid,
        u["insp"],
        T0,
        _all(),
        [NewHazard("general", "灭火器过期", D0 + timedelta(days=7), photo)],
    )
    with engine.connect() as conn:
        att = conn.execute(
            select(Attachment.hazard_id, Attachment.inspection_id, Attachment.mime, Attachment.data)
        ).one()
        card = venue_card_for(conn, u["insp"], vid, D0)
        admin_view = venue_history(conn, vid, today=D0, viewer=u["admin"])
    assert att[:3] == (d.hazard_ids[0], d.inspection_id, "image/jpeg")
    assert not Image.open(io.BytesIO(att[3])).getexif()
    assert card.venue["responsible_phone"] == "138****5678"
    # Masked for an admin too: the full number only through a logged reveal (services.personal_data).
    assert admin_view.venue["responsible_phone"] == "138****5678"
    assert card.venue["safety_code"] == "yellow" and len(card.photos) == 1
    assert (
        card.inspections.iloc[0]["result"] == "fail" and card.inspections.iloc[0]["inspector"] == "insp姓名"
    )
    assert card.open_hazards["description"].tolist() == ["灭火器过期"]
    assert card.code_changes.iloc[0]["to_code"] == "yellow"


def test_a_passed_visit_keeps_its_own_photos_without_exif_and_bad_ones_change_nothing(store):
    """现场照片 of the visit itself (留痕, a passed check too): stored with the inspection, no hazard."""
    from services.inspections import MAX_VISIT_PHOTOS, InvalidInspection

    engine, vid, u = store

    def visit(photos):
        return record_inspection(
            UnitOfWork(engine), user=u["insp"], venue_id=vid, now=T0, checklist=_all(), photos=photos
        )

    before = _counts(engine)
    with pytest.raises(InvalidInspection) as too_many:
        visit([_jpeg_with_exif()] * (MAX_VISIT_PHOTOS + 1))
    assert "最多上传 3 张" in too_many.value.problems["现场照片"]
    with pytest.raises(InvalidInspection) as broken:
        visit([_jpeg_with_exif(), b"<html>not a photo</html>"])
    assert set(broken.value.problems) == {"现场照片2"}  # named by its place
    assert _counts(engine) == before  # nothing of either was written
    done = visit([_jpeg_with_exif(), _heic_with_exif()])  # an iPhone's HEIC among them
    assert done.result == InspectionResult.PASS
    with engine.connect() as conn:
        kept = conn.execute(
            select(Attachment.inspection_id, Attachment.hazard_id, Attachment.mime, Attachment.data).order_by(
                Attachment.id
            )
        ).all()
        card = venue_card_for(conn, u["insp"], vid, D0)
    assert [(k.inspection_id, k.hazard_id, k.mime) for k in kept] == [
        (done.inspection_id, None, "image/jpeg")
    ] * 2
    assert [Image.open(io.BytesIO(k.data)).format for k in kept] == ["JPEG", "JPEG"]
    assert not any(Image.open(io.BytesIO(k.data)).getexif() for k in kept)
    assert len(card.photos) == 2  # the venue card shows them


def test_a_system_caller_records_without_a_user_and_the_history_reads_back(store):
    engine, vid, _ = store
    d = record_inspection(
        UnitOfWork(engine), venue_id=vid, now=T0, checklist=_all() | {"gas_use": "na"}, inspector_id=None
    )
    assert d.code_after is SafetyCode.GREEN and d.next_due_on == D0 + timedelta(days=30)
    with engine.connect() as conn:
        h = venue_history(conn, vid, today=date(2026, 12, 25))
    assert h.inspections.iloc[0]["inspector"] == "系统"
    assert h.venue["overdue_days"] == 4
