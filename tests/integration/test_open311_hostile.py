"""The Open311 API against hostile or careless clients (review B): methods and paths it does not serve,
headers an XML answer must keep, text in a charset other than the one declared, personal numbers typed
with separators the masks did not know. Every refusal is the specification's error list in Chinese and
leaves the store as it was."""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import select

from db.models import Event
from tests.open311_server import BASE, counts, refused, report_fields, served, square_store


@pytest.fixture(scope="module")
def store(new_store_url):
    with square_store(new_store_url()) as (engine, key):
        yield engine, key("12345", "990001001")[1], key


@pytest.fixture(scope="module")
def url(store):
    with served(store[0]) as host:
        yield f"http://{host}{BASE}"


@pytest.mark.parametrize("method", ["TRACE", "PROPFIND", "MKCOL", "LINK"])
def test_a_method_outside_the_usual_ones_gets_the_error_list_too(store, url, method):
    """PUT, DELETE and PATCH were answered in the error list; TRACE or a WebDAV method reached Starlette's
    own 405, plain English text (and under serve.py one that said ``Allow: GET, HEAD``)."""
    engine = store[0]
    before = counts(engine)
    answer = requests.request(method, f"{url}/requests.json", timeout=30)
    refused(answer, 405, method)
    assert answer.headers["Allow"] == "GET, HEAD, POST"
    assert counts(engine) == before


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", ""),
        ("GET", "/"),
        ("GET", "/requests"),
        ("POST", "/requests"),
        ("GET", "/requests."),
        ("GET", "/services/urban/attributes.json"),
        ("GET", "/requests/1/notes.json"),
        ("DELETE", "/nothing"),
    ],
)
def test_an_address_under_the_api_that_it_does_not_serve_is_a_404_in_the_error_list(store, url, method, path):
    """A path without its format or one the API does not have was Starlette's plain 'Not Found' (and under
    serve.py the app's HTML page with a 200, or its 405)."""
    engine, key, _ = store
    before = counts(engine)
    answer = requests.request(
        method, f"{url}{path}", data=report_fields(key) if method == "POST" else None, timeout=30
    )
    refused(answer, 404, "接口")
    assert counts(engine) == before


def test_an_xml_refusal_keeps_the_allow_and_retry_after_headers(store, url, monkeypatch):
    """The XML answer was rebuilt from the JSON one with only Cache-Control: a 405 lost its Allow and a
    429 its Retry-After."""
    from services import api_keys

    monkeypatch.setattr(
        api_keys, "LIMITS", api_keys.RateWindow()
    )  # the process's windows hold other stores' key ids
    _, _, key = store
    put = requests.put(f"{url}/requests.xml", timeout=30)
    assert put.status_code == 405 and put.headers["Allow"] == "GET, HEAD, POST"
    assert put.headers["Content-Type"].startswith("text/xml")
    slow = key("mini_program", "990001001", per_minute=1)[1]
    first = requests.get(f"{url}/requests.xml", params={"api_key": slow}, timeout=30)
    assert first.status_code == 200, first.text
    over = requests.get(f"{url}/requests.xml", params={"api_key": slow}, timeout=30)
    if over.status_code == 200:  # a new minute began between the two: its window allows one more
        over = requests.get(f"{url}/requests.xml", params={"api_key": slow}, timeout=30)
    assert over.status_code == 429, over.text
    assert over.headers["Content-Type"].startswith("text/xml")
    assert 1 <= int(over.headers["Retry-After"]) <= 60
    assert over.headers["Cache-Control"] == "no-store"


def _multipart(fields: dict[str, str], encoding: str = "utf-8", boundary: str = "b0und") -> bytes:
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'.encode()
        + v.encode(encoding)
        + b"\r\n"
        for k, v in fields.items()
    ]
    return b"".join(parts) + f"--{boundary}--\r\n".encode()


def test_multipart_text_not_in_its_charset_is_refused_not_stored_as_latin_1(store, url):
    """Starlette reads a multipart text field that is not in the body's charset as Latin-1: GBK text sent
    without a charset was stored garbled (路灯不亮 as Â·µÆ²»ÁÁ) and the check for U+FFFD never saw it."""
    engine, key, _ = store
    fields = report_fields(key, 1, description="路灯不亮，占道经营")
    before = counts(engine)
    for kind in ("multipart/form-data; boundary=b0und", "multipart/form-data; boundary=b0und; charset=utf-8"):
        sent = requests.post(
            f"{url}/requests.json", data=_multipart(fields, "gbk"), headers={"Content-Type": kind}, timeout=30
        )
        refused(sent, 400, "description", "UTF-8")
    odd = requests.post(
        f"{url}/requests.json",
        data=_multipart(fields),
        headers={"Content-Type": "multipart/form-data; boundary=b0und; charset=koi8-r"},
        timeout=30,
    )
    refused(odd, 400, "字符集")
    assert counts(engine) == before
    declared = requests.post(
        f"{url}/requests.json",
        data=_multipart(fields, "gbk"),
        headers={"Content-Type": "multipart/form-data; boundary=b0und; charset=GBK"},
        timeout=30,
    )
    assert declared.status_code == 200, declared.text
    with engine.connect() as conn:
        stored = conn.execute(
            select(Event.description).where(Event.id == int(declared.json()[0]["service_request_id"]))
        ).scalar_one()
    assert stored == "路灯不亮，占道经营"
    plain = requests.post(
        f"{url}/requests.json",
        data=_multipart(report_fields(key, 1, description="井盖缺失 � 已报")),
        headers={"Content-Type": "multipart/form-data; boundary=b0und"},
        timeout=30,
    )
    assert plain.status_code == 200, plain.text  # U+FFFD typed as such is text like any other


def test_utf_8_text_declared_as_gbk_is_refused_not_stored_garbled(store, url):
    """Most UTF-8 Chinese is also valid GB 18030 bytes: a form declared charset=gbk but sent in UTF-8
    was stored as 浜曠洊缂哄け for 井盖缺失. Text that reads as UTF-8 is refused under a GBK label."""
    from urllib.parse import urlencode

    engine, key, _ = store
    fields = report_fields(key, 2, description="井盖缺失", address_string="荷花街道")
    before = counts(engine)
    form = requests.post(
        f"{url}/requests.json",
        data=urlencode(fields).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=gbk"},
        timeout=30,
    )
    refused(form, 400, "UTF-8", "charset=gbk")
    parts = requests.post(
        f"{url}/requests.json",
        data=_multipart(fields),
        headers={"Content-Type": "multipart/form-data; boundary=b0und; charset=gbk"},
        timeout=30,
    )
    refused(parts, 400, "UTF-8", "charset=gbk")
    assert counts(engine) == before
    for body, kind in (
        (urlencode(fields, encoding="gbk").encode(), "application/x-www-form-urlencoded; charset=gbk"),
        (_multipart(fields, "gbk"), "multipart/form-data; boundary=b0und; charset=gbk"),
    ):
        sent = requests.post(f"{url}/requests.json", data=body, headers={"Content-Type": kind}, timeout=30)
        assert sent.status_code == 200, sent.text
        with engine.connect() as conn:
            stored = conn.execute(
                select(Event.description).where(Event.id == int(sent.json()[0]["service_request_id"]))
            ).scalar_one()
        assert stored == "井盖缺失\n地址：荷花街道"


@pytest.mark.parametrize(
    ("typed", "secret"),
    [
        ("１３８－１２３４－５６７８", "１２３４"),  # an IME in full-width mode: digits and hyphens
        ("138\u00a01234\u00a05678", "1234"),  # no-break spaces, pasted from a web page or a document
        ("138\u30001234\u30005678", "1234"),  # ideographic spaces
        ("138.1234.5678", "1234"),
        ("138–1234–5678", "1234"),  # an en dash, as a word processor corrects a hyphen
        ("座机 0570－8765432", "8765"),
        ("身份证３３０８０２１９９００１０１１２３Ｘ", "１９９００１０１"),  # full-width, its X too
        ("身份证 330802 19900101 123X", "19900101"),  # in its three groups
    ],
)
def test_phones_and_ids_typed_with_other_separators_do_not_leave_through_the_api(store, url, typed, secret):
    """The masks knew a space and an ASCII hyphen between a number's groups (and full-width digits, but
    not a full-width X): these were answered as typed to every system reading the API."""
    _, key, _ = store
    filed = requests.post(
        f"{url}/requests.json", data=report_fields(key, 3, description=f"回拨 {typed}"), timeout=30
    )
    assert filed.status_code == 200, filed.text
    rid = filed.json()[0]["service_request_id"]
    shown = requests.get(f"{url}/requests/{rid}.json", params={"api_key": key}, timeout=30).json()[0]
    assert secret not in shown["description"], shown["description"]
    assert "*" in shown["description"]


def test_a_description_of_direction_marks_only_is_empty(store, url):
    """The API's list of invisible characters had zero-width spaces and the BOM, not direction marks."""
    engine, key, _ = store
    before = counts(engine)
    for text in ("\u200f\u202e", "\u200e\u2066\u2069"):
        refused(
            requests.post(f"{url}/requests.json", data=report_fields(key, description=text), timeout=30),
            400,
            "描述",
        )
    assert counts(engine) == before


def test_a_form_that_starts_with_a_byte_order_mark_is_read_as_without_it(store, url):
    """Windows tools may write a UTF-8 byte-order mark before a form: it stuck to the first field's name,
    and the answer said 缺少 api_key though the key was there."""
    from urllib.parse import urlencode

    engine, key, _ = store
    before = counts(engine)
    sent = requests.post(
        f"{url}/requests.json",
        data=b"\xef\xbb\xbf" + urlencode(report_fields(key, 3, description="窨井盖松动")).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=30,
    )
    assert sent.status_code == 200, sent.text
    assert counts(engine)[0] == before[0] + 1


def test_a_multipart_body_cut_off_before_its_end_is_refused_as_incomplete(store, url):
    """A multipart body that stops before its closing boundary lost its unfinished last field without a
    word: the answer blamed the client for a missing description it had sent."""
    engine, key, _ = store
    whole = _multipart(report_fields(key, 0, description="夜间施工噪音"))
    before = counts(engine)
    for cut in (whole[: -len(b"--b0und--\r\n")], whole[: whole.rindex(b"\r\n--b0und")]):
        sent = requests.post(
            f"{url}/requests.json",
            data=cut,
            headers={"Content-Type": "multipart/form-data; boundary=b0und"},
            timeout=30,
        )
        refused(sent, 400, "不完整")
    assert counts(engine) == before
    sent = requests.post(
        f"{url}/requests.json",
        data=whole,
        headers={"Content-Type": "multipart/form-data; boundary=b0und"},
        timeout=30,
    )
    assert sent.status_code == 200, sent.text


def test_a_list_of_service_codes_with_spaces_is_read_as_a_post_reads_one(store, url):
    """A POST trimmed ``service_code`` and a GET refused the same text with spaces as 未知的事项代码."""
    _, key, _ = store
    listed = requests.get(
        f"{url}/requests.json", params={"api_key": key, "service_code": " urban, dispute "}, timeout=30
    )
    assert listed.status_code == 200, listed.text
    assert {r["service_code"] for r in listed.json()} <= {"urban", "dispute"}
