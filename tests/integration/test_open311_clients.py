"""The Open311 API against clients it was not written with (found by probing it as other systems would):
bodies in another charset or format, methods it does not serve, text no XML may carry, extreme dates,
status sync within one second and past one page, and personal data typed in ways the masks missed.
Every refusal is the specification's error list in Chinese and leaves the store as it was."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote, urlencode
from xml.etree import ElementTree

import pytest
import requests
from sqlalchemy import select, update

from db.models import Event
from services import api_keys, clock
from services.api_keys import RateWindow
from tests.builders import grid_centre
from tests.open311_server import BASE, counts, refused, report_fields, served, square_store


@pytest.fixture(scope="module")
def store(new_store_url):
    with square_store(new_store_url()) as (engine, key):
        yield engine, key("12345", "990001001")[1], key


@pytest.fixture(scope="module")
def url(store):
    with served(store[0]) as host:
        yield f"http://{host}{BASE}"


def _raw(url: str, body: str | bytes, kind: str = "application/x-www-form-urlencoded") -> requests.Response:
    """A POST of ``body`` exactly as given, under the Content-Type ``kind``."""
    return requests.post(f"{url}/requests.json", data=body, headers={"Content-Type": kind}, timeout=30)


def _stored(engine, answer: requests.Response) -> str:
    """The description stored for the request ``answer`` filed."""
    with engine.connect() as conn:
        return conn.execute(
            select(Event.description).where(Event.id == int(answer.json()[0]["service_request_id"]))
        ).scalar_one()


def test_a_form_in_gbk_is_read_in_the_charset_it_declares_and_undeclared_gbk_is_refused(store, url):
    engine, key, _ = store
    body = urlencode(report_fields(key, 1, description="路灯不亮，占道经营"), encoding="gbk")
    declared = _raw(url, body, "application/x-www-form-urlencoded; charset=GBK")
    assert declared.status_code == 200, declared.text
    assert _stored(engine, declared) == "路灯不亮，占道经营"
    before = counts(engine)
    refused(_raw(url, body), 400, "UTF-8", "charset=gbk")
    refused(_raw(url, body, "application/x-www-form-urlencoded; charset=koi8-r"), 400, "字符集")
    assert counts(engine) == before


def test_a_json_body_is_refused_as_not_a_form(store, url):
    engine, key, _ = store
    before = counts(engine)
    refused(requests.post(f"{url}/requests.json", json=report_fields(key), timeout=30), 400, "表单", "JSON")
    assert counts(engine) == before


def test_two_photos_are_refused_by_name_not_as_a_broken_form(store, url):
    engine, key, _ = store
    before = counts(engine)
    two = requests.post(
        f"{url}/requests.json",
        data=report_fields(key),
        files=[
            ("media", ("a.jpg", b"\xff\xd8\xff", "image/jpeg")),
            ("media2", ("b.jpg", b"x", "image/jpeg")),
        ],
        timeout=30,
    )
    refused(two, 400, "一张照片")
    assert counts(engine) == before


def test_head_answers_as_get_and_other_methods_get_the_error_list(url):
    head = requests.head(f"{url}/services.json", timeout=30)
    assert head.status_code == 200 and head.content == b""
    assert requests.head(f"{url}/requests.json", timeout=30).status_code == 403  # a GET without a key
    for method in ("PUT", "DELETE", "PATCH"):
        answer = requests.request(method, f"{url}/requests.json", timeout=30)
        refused(answer, 405, method)
        assert answer.headers["Allow"] == "GET, HEAD, POST"
    assert requests.post(f"{url}/services.json", timeout=30).headers["Allow"] == "GET, HEAD"


def test_control_characters_are_refused_and_never_reach_an_xml_answer(store, url):
    engine, key, _ = store
    before = counts(engine)
    for text in ("报警\x1b[31m", "垂直\x0b制表", "\ufffe"):
        refused(
            requests.post(f"{url}/requests.json", data=report_fields(key, description=text), timeout=30), 400
        )
    refused(
        requests.post(
            f"{url}/requests.json", data=report_fields(key, address_string="紫荆路\x00"), timeout=30
        ),
        400,
        "address_string",
    )
    assert counts(engine) == before
    # a row that came in another way (an old import) still gives readable XML
    filed = requests.post(f"{url}/requests.json", data=report_fields(key, 2), timeout=30).json()
    rid = int(filed[0]["service_request_id"])
    with engine.begin() as conn:
        conn.execute(update(Event).where(Event.id == rid).values(description="旧数据\x1b\x0c残留"))
    xml = requests.get(f"{url}/requests/{rid}.xml", params={"api_key": key}, timeout=30)
    assert ElementTree.fromstring(xml.content).find("request/description").text == "旧数据残留"


def test_dates_at_the_ends_of_the_calendar_are_refused_not_an_incident(store, url):
    _, key, _ = store
    for name, value in (
        ("start_date", "0001-01-01T00:00:00+08:00"),
        ("updated_after", "9999-12-31T23:59:59Z"),
    ):
        refused(
            requests.get(f"{url}/requests.json", params={"api_key": key, name: value}, timeout=30), 400, name
        )
    lower_z = requests.get(
        f"{url}/requests.json", params={"api_key": key, "start_date": "2026-11-21T00:00:00z"}, timeout=30
    )
    assert lower_z.status_code == 200


def test_a_description_within_its_limit_but_over_with_the_address_is_told_as_such(store, url):
    engine, key, _ = store
    before = counts(engine)
    refused(
        requests.post(f"{url}/requests.json", data=report_fields(key, description="长" * 2001), timeout=30),
        400,
        "description",
        "2000",
    )
    both = requests.post(
        f"{url}/requests.json",
        data=report_fields(key, description="长" * 1800, address_string="地" * 250),
        timeout=30,
    )
    refused(both, 400, "description", "合计")
    refused(
        requests.post(
            f"{url}/requests.json", data=report_fields(key, description="\u200b \u3000"), timeout=30
        ),
        400,
    )
    assert counts(engine) == before


def test_status_sync_misses_no_change_of_the_same_second_and_pages_past_a_full_page(store, url):
    engine, key, _ = store
    ids = [
        int(
            requests.post(f"{url}/requests.json", data=report_fields(key, 3), timeout=30).json()[0][
                "service_request_id"
            ]
        )
        for _ in range(5)
    ]
    second = (clock.now() + timedelta(days=400)).replace(microsecond=0)
    with engine.begin() as conn:  # every change stamped in one second (as the 上移 sweep stamps them)
        conn.execute(update(Event).where(Event.id.in_(ids)).values(updated_at=second))
    since = second.strftime("%Y-%m-%dT%H:%M:%S+08:00")
    first = requests.get(f"{url}/requests.json", params={"api_key": key, "updated_after": since}, timeout=30)
    assert [int(r["service_request_id"]) for r in first.json()] == sorted(
        ids
    )  # the second itself, oldest first
    later = requests.get(
        f"{url}/requests.json",
        params={"api_key": key, "updated_after": since, "after_request_id": str(sorted(ids)[2])},
        timeout=30,
    )
    assert [int(r["service_request_id"]) for r in later.json()] == sorted(ids)[3:]


def test_asking_for_more_ids_than_a_list_holds_is_refused_not_cut(store, url):
    _, key, _ = store
    many = ",".join(str(i) for i in range(1, 202))
    refused(
        requests.get(f"{url}/requests.json", params={"api_key": key, "service_request_id": many}, timeout=30),
        400,
        "200",
    )


def test_a_key_over_its_limit_is_told_when_to_come_back(store, url, monkeypatch):
    _, _, key = store
    monkeypatch.setattr(api_keys, "LIMITS", RateWindow())  # the process's windows hold other stores' key ids
    _, slow = key("mini_program", "990001001", per_minute=1)
    assert requests.get(f"{url}/requests.json", params={"api_key": slow}, timeout=30).status_code == 200
    over = requests.get(f"{url}/requests.json", params={"api_key": slow}, timeout=30)
    refused(over, 429, "秒后再试")
    assert 1 <= int(over.headers["Retry-After"]) <= 60
    assert [RateWindow.seconds_left(at) for at in (0.0, 0.5, 59.2, 30.0)] == [60, 60, 1, 30]


def test_phones_ids_and_house_numbers_typed_any_way_do_not_leave_through_the_api(store, url):
    _, key, _ = store
    typed = "回拨 138 1234 5678 或 +86-139-8765-4321，座机 0570-8765432，身份证 33080219900101123X"
    filed = requests.post(
        f"{url}/requests.json",
        data=report_fields(key, 3, description=typed, address_string="荷花街道紫荆路88号3幢2单元501室"),
        timeout=30,
    ).json()
    rid = filed[0]["service_request_id"]
    shown = requests.get(f"{url}/requests/{rid}.json", params={"api_key": key}, timeout=30).json()[0]
    text = shown["description"]
    for secret in ("1234", "8765 ", "876543", "19900101", "88号", "501室"):
        assert secret not in text, text
    assert "紫荆路*号*幢*单元*室" in text and "5678" in text  # the road kept, the last digits kept


def test_a_form_decoded_here_keeps_every_field_of_a_published_client(store, url):
    """The form is decoded by the API itself now: '+' for a space, percent escapes, a name sent twice
    (the last counts), blank values, as browsers and HTTP libraries send them."""
    engine, key, _ = store
    lon, lat = grid_centre(2)
    body = (
        f"api_key={quote(key)}&service_code=urban&service_code=urban&lat={lat}&long={lon}"
        "&description=%E4%BA%95%E7%9B%96+%E7%BC%BA%E5%A4%B1&media_url=&attribute%5Bwork_order%5D=GD-7"
    )
    answer = _raw(url, body.encode())
    assert answer.status_code == 200, answer.text
    assert _stored(engine, answer) == "井盖 缺失"


def test_a_body_past_the_upload_limit_is_refused_before_it_is_read_whole(store, url):
    """A 200 MB multipart body without a key was received and spooled to disk before anything was said."""
    engine, _, _ = store
    before = counts(engine)
    declared = _raw(url, b"x" * 1024, "multipart/form-data; boundary=b")
    assert declared.status_code == 400  # a broken multipart body: refused, not a 500
    chunk = b'--b\r\nContent-Disposition: form-data; name="media"; filename="a.jpg"\r\n\r\n' + b"\xff" * 65536

    def body():
        yield chunk
        for _ in range(16 * 20):  # 20 MB more, sent without a length
            yield b"\xff" * 65536

    answer = requests.post(
        f"{url}/requests.json",
        data=body(),
        headers={"Content-Type": "multipart/form-data; boundary=b"},
        timeout=60,
    )
    refused(answer, 400, "过大")
    told = requests.post(
        f"{url}/requests.json",
        data=b"",
        headers={"Content-Type": "multipart/form-data; boundary=b", "Content-Length": str(300 * 2**20)},
        timeout=30,
    )
    refused(told, 400, "过大")
    assert counts(engine) == before
