"""Open311 GeoReport v2 over HTTP (decision 0024, docs/open311.md), served by serve.py beside the app.

Routes under ``/open311/v2/``: ``discovery.json``, ``services.json``, ``services/{code}.json``,
``requests.json`` (GET, POST), ``requests/{id}.json``, ``tokens/{token}.json``, ``openapi.json``.
JSON, or the specification's XML for a path ending in ``.xml`` (not the OpenAPI document). Errors are the specification's
list of ``{code, description}`` with 400/403/404 (and 429 for a key over its limit); no traceback ever
leaves: an unexpected failure is logged with an incident id and answered 500 in Chinese.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl
from xml.etree.ElementTree import Element, SubElement, tostring

from sqlalchemy import Connection
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.openapi import document
from domain.intake import CONTROL_CHARACTERS
from services import api_keys, faults, open311
from services.access import OutOfScope
from services.intake import GroupCommit
from services.locate import OutsideArea
from services.submissions import KeyReused

log = logging.getLogger("api.open311")
BASE = "/open311/v2"
HEADERS = {"Cache-Control": "no-store"}
Handler = Callable[[Request, dict[str, Any]], Response]
MAX_UPLOAD = 10 * 1024 * 1024
#: A form without a photo (application/x-www-form-urlencoded): text fields only.
MAX_FORM = 1024 * 1024
#: A multipart body: the photo and the text fields, with room for the parts' headers.
MAX_BODY = MAX_UPLOAD + MAX_FORM
MAX_FIELDS = 50
#: The Chinese charsets a hotline system may declare: read as GB 18030, which contains GBK and GB 2312.
GB = ("gbk", "gb2312", "gb18030", "cp936", "x-gbk")


#: The threads the handlers run on (they read and write the store, which blocks). The event loop's own
#: executor, not Starlette's ``run_in_threadpool``: anyio's limiter and cancel scopes around each call
#: were ~0.1 ms of the interpreter's time per request on the busiest path (decision 0059). As many
#: threads as anyio's default limit.
_WORKERS = ThreadPoolExecutor(max_workers=40, thread_name_prefix="open311")


async def _in_thread(handler: Handler, request: Request, form: dict[str, Any]) -> Response:
    return await asyncio.get_running_loop().run_in_executor(_WORKERS, handler, request, form)


def _json(body: Any, status: int = 200) -> Response:
    return JSONResponse(body, status_code=status, headers=HEADERS)


def _error(status: int, description: str) -> Response:
    return _json([{"code": status, "description": description}], status)


def _problems(problems: dict[str, str]) -> Response:
    return _json([{"code": 400, "description": f"{k}：{v}"} for k, v in problems.items()], 400)


def _format(request: Request) -> str | None:
    fmt = request.path_params.get("fmt", "json")
    return fmt if fmt in ("json", "xml") else None


#: The element of each list item in the specification's XML.
SINGULAR = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
}


def _element(parent: Element, tag: str, value: Any) -> None:
    el = SubElement(parent, tag)
    if isinstance(value, dict):
        for k, v in value.items():
            _element(el, k, v)
    elif isinstance(value, list):
        for v in value:
            _element(el, SINGULAR.get(tag, "item"), v)
    elif isinstance(value, bool):
        el.text = "true" if value else "false"
    elif value is not None:
        # characters XML cannot carry at all, refused by the intake: rows stored before may hold them
        el.text = CONTROL_CHARACTERS.sub("", str(value))


def _as_xml(answer: JSONResponse, root: str) -> Response:
    """The JSON answer in the specification's XML (an error list as ``<errors><error>``)."""
    body = json.loads(bytes(answer.body))
    top = Element("errors" if answer.status_code >= 400 else root)
    if isinstance(body, list):
        for item in body:
            _element(top, SINGULAR.get(top.tag, "item"), item)
    else:
        for k, v in body.items():
            _element(top, k, v)
    text = '<?xml version="1.0" encoding="utf-8"?>' + tostring(top, encoding="unicode")
    # the JSON answer's own headers too: a 405's Allow, a 429's Retry-After
    kept = {k: v for k, v in answer.headers.items() if k in ("allow", "retry-after")}
    return Response(
        text.encode(),
        status_code=answer.status_code,
        media_type="text/xml; charset=utf-8",
        headers={**HEADERS, **kept},
    )


async def _read_form(request: Request) -> dict[str, Any] | Response:
    """A POST's fields (the last of a name sent twice), the photo as bytes under ``media``; or the
    specification's 400 saying what is wrong with the body. A url-encoded form is decoded in the charset
    its Content-Type declares (UTF-8 unless it says GBK/GB18030): text that is not in it is refused,
    never stored garbled."""
    kind, _, params = request.headers.get("content-type", "").partition(";")
    kind = kind.strip().lower()
    if kind == "multipart/form-data":
        charset = _charset(params)
        if isinstance(charset, Response):
            return charset
        return await _read_multipart(request, charset)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            return _error(400, "表单过大（上限 1 MB）；照片请以 multipart/form-data 的 media 字段上传")
    if kind != "application/x-www-form-urlencoded" and (kind or body.strip()):
        return _error(
            400, "请求体须为 application/x-www-form-urlencoded 或 multipart/form-data 表单（不支持 JSON）"
        )
    charset = _charset(params)
    if isinstance(charset, Response):
        return charset
    if charset.startswith("utf") and body.startswith(b"\xef\xbb\xbf"):
        # a byte-order mark some Windows tools write first: it would stick to the first field's name
        # (the key then read as missing), so it is dropped as a UTF-8 decoder drops it
        del body[:3]
    try:  # split on the bytes (Latin-1 keeps each byte), then each name and value decoded as declared
        pairs = parse_qsl(
            bytes(body).decode("latin-1"),
            keep_blank_values=True,
            encoding="latin-1",
            max_num_fields=MAX_FIELDS,
        )
    except ValueError:
        return _error(400, f"表单字段过多（上限 {MAX_FIELDS} 个）")
    form: dict[str, Any] = {}
    for name, value in pairs:
        try:
            form[_decoded(name.encode("latin-1"), charset)] = _decoded(value.encode("latin-1"), charset)
        except UnicodeDecodeError:
            return _error(
                400,
                f"表单内容不是 {charset.upper()} 编码；请用 UTF-8 编码，或在 Content-Type 中注明 charset=gbk",
            )
        except _Utf8AsGb:
            return _error(400, UTF8_AS_GB)
    return form


class _Utf8AsGb(ValueError):
    """Text declared GBK that reads as UTF-8 (most UTF-8 Chinese is also valid GB 18030 bytes)."""


UTF8_AS_GB = (
    "表单内容是 UTF-8 编码，但 Content-Type 注明了 charset=gbk；请去掉 charset=gbk，或以 GBK 编码发送"
)


def _decoded(raw: bytes, charset: str) -> str:
    """``raw`` decoded strictly in ``charset`` (UnicodeDecodeError); under a GB label, non-ASCII text that
    reads as UTF-8 too is :class:`_Utf8AsGb`: a client that declared GBK and sent UTF-8, whose text GB
    18030 would read as other characters (井盖缺失 as 浜曠洊缂哄け), never stored so."""
    text = raw.decode(charset)
    if charset == "gb18030" and not raw.isascii():
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return text
        raise _Utf8AsGb
    return text


def _charset(params: str) -> str | Response:
    """The charset a Content-Type's parameters declare (UTF-8 unless it says GBK/GB18030, read as GB
    18030), or the specification's 400 for any other."""
    charset = "utf-8"
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower() or "utf-8"
    if charset in GB:
        charset = "gb18030"
    if charset not in ("utf-8", "utf8", "gb18030"):
        return _error(400, f"不支持的字符集：{charset[:20]}（请用 UTF-8，或 GBK）")
    return charset


class _StrictParts(MultiPartParser):
    """Starlette's multipart parser, but a text field is decoded strictly in the body's declared charset:
    Starlette reads one that is not in it as Latin-1 (GBK text sent undeclared was stored garbled). Such
    a field's name is kept in ``undecodable``. ``ended``: the closing boundary was read (a body cut off
    before it lost its last field without a word)."""

    def __init__(self, *args: Any, charset: str, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.text_charset = charset
        self.undecodable: list[str] = []
        self.utf8_as_gb = False
        self.ended = False

    def on_end(self) -> None:
        self.ended = True

    def on_part_end(self) -> None:
        part = self._current_part
        if part.file is not None:
            super().on_part_end()
            return
        try:
            value = _decoded(bytes(part.data), self.text_charset)
        except UnicodeDecodeError:
            self.undecodable.append(part.field_name)
            value = ""
        except _Utf8AsGb:
            self.utf8_as_gb = True
            value = ""
        self.items.append((part.field_name, value))


class _TooLarge(Exception):
    """A body past :data:`MAX_BODY`: reading stops there."""


def _capped(request: Request, limit: int) -> Request:
    """``request`` whose body stops being read past ``limit`` bytes (:class:`_TooLarge`): a multipart
    upload is spooled to disk as it comes, so a 200 MB body without a key filled the disk first."""
    seen = 0

    async def receive():
        nonlocal seen
        message = await request.receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _TooLarge
        return message

    return Request(request.scope, receive)


async def _read_multipart(request: Request, charset: str) -> dict[str, Any] | Response:
    too_large = _error(400, "请求体过大：照片上限 10 MB，文字字段合计上限 1 MB")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY:  # said before it is sent: refused unread
        return too_large
    capped = _capped(request, MAX_BODY)
    parser = _StrictParts(
        capped.headers, capped.stream(), max_files=1, max_fields=MAX_FIELDS, charset=charset
    )
    try:
        data = await parser.parse()
    except _TooLarge:
        return too_large
    except (MultiPartException, HTTPException) as exc:  # Starlette raises the latter inside an app
        text = str(getattr(exc, "message", None) or getattr(exc, "detail", ""))
        if "files" in text:
            return _error(400, "只能上传一张照片（media 字段）")
        if "fields" in text:
            return _error(400, f"表单字段过多（上限 {MAX_FIELDS} 个）")
        if "size" in text:
            return _error(400, "表单文字字段过大（每个上限 1 MB）")
        return _error(400, "multipart/form-data 表单格式有误，无法读取")
    except Exception:  # a body that is not the multipart it says it is
        return _error(400, "multipart/form-data 表单格式有误，无法读取")
    if not parser.ended:  # cut off in transit or by the client: its last field would be missing
        return _error(400, "multipart/form-data 表单不完整（缺少结束分隔线），请重新发送")
    if parser.utf8_as_gb:
        return _error(400, UTF8_AS_GB)
    if parser.undecodable:
        name = parser.undecodable[0][:40]
        return _error(
            400,
            f"字段 {name} 不是 {charset.upper()} 编码的文字；请用 UTF-8 编码，或在 Content-Type 中注明 charset=gbk",
        )
    form: dict[str, Any] = {}
    for name, value in data.items():
        if isinstance(value, str):
            form[name] = value
    media = data.get("media")
    if media is not None and not isinstance(media, str):  # the uploaded photo
        photo = await media.read(MAX_UPLOAD + 1)
        if len(photo) > MAX_UPLOAD:
            return _error(400, "照片：文件过大，上限 10 MB")
        form["media"] = photo
    return form


def _basic_user(request: Request) -> str | None:
    """The key sent as the HTTP Basic user name (``https://KEY:@host/…``; the password is ignored): for
    clients that send no ``api_key`` on GET, as published Open311 libraries do (docs/open311.md)."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        user = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")[0]
    except (ValueError, UnicodeDecodeError):
        return None
    return user or None


#: ``OPEN311_GROUP_COMMIT=0`` writes each POST in a transaction of its own (decision 0035: by default the
#: POSTs of the moment share one, each in its savepoint, each answered after the commit).
GROUP_COMMIT_ENV = "OPEN311_GROUP_COMMIT"
_groups: weakref.WeakKeyDictionary[Any, GroupCommit] = weakref.WeakKeyDictionary()
_groups_lock = threading.Lock()


def group_commit(engine: Any) -> GroupCommit | None:
    """The process's batch of POSTs for ``engine`` (one per store), or None when switched off."""
    if os.environ.get(GROUP_COMMIT_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    with _groups_lock:
        found = _groups.get(engine)
        if found is None:
            found = _groups[engine] = GroupCommit(engine)
        return found


class _EveryMethod(Route):
    """A route whose handler every method reaches (TRACE, PROPFIND … too), so that one it does not serve
    is answered 405 in the specification's error list: Starlette's own 405 for a method not listed is
    plain English text (and under serve.py said ``Allow: GET, HEAD``)."""

    def __init__(self, path: str, endpoint: Callable[..., Any]) -> None:
        super().__init__(path, endpoint)
        self.methods = None


def make_routes(store: Callable[[], Any] = open311.default_store, prefix: str = "") -> list[Route]:
    """The API's routes; ``store`` gives the Engine (tests pass their own)."""

    def channel(conn: Any, key: str | None) -> api_keys.Channel | None:
        return api_keys.channel_of(conn, key)

    def guard(get: Handler | None = None, post: Handler | None = None, root: str | None = None):
        async def endpoint(request: Request) -> Response:
            answer = await answered(request)
            if request.path_params.get("fmt") == "xml" and isinstance(answer, JSONResponse):
                return _as_xml(answer, root or "errors")
            return answer

        async def answered(request: Request) -> Response:
            method = "GET" if request.method == "HEAD" else request.method  # HEAD: GET's answer, no body
            handler = {"GET": get, "POST": post}.get(method)
            if handler is None:
                allowed = ", ".join(m for m, h in (("GET, HEAD", get), ("POST", post)) if h is not None)
                refused = _error(405, f"此地址不支持 {request.method[:10]} 请求（可用：{allowed}）")
                refused.headers["Allow"] = allowed
                return refused
            if _format(request) is None or (root is None and _format(request) == "xml"):
                return _error(400, "仅支持 JSON 或 XML 格式（请求路径以 .json 或 .xml 结尾）")
            form: dict[str, Any] = {}
            if method == "POST":
                read = await _read_form(request)
                if isinstance(read, Response):
                    return read
                form = read
            try:
                return await _in_thread(handler, request, form)
            except Exception as exc:  # never a traceback to the caller: logged under an incident id
                what = faults.incident(exc, f"open311 {request.method} {request.url.path}")
                status = 500 if what.fault is faults.Fault.UNEXPECTED else 503
                return _error(status, f"{what.message}（事件编号 {what.incident_id}）")

        return endpoint

    def authorised(
        request: Request, form: dict[str, Any], conn: Connection, checked: bool = False
    ) -> tuple[api_keys.Channel | None, Response | None]:
        """The request's key on the request's read connection (:func:`services.open311.reader`).
        ``checked``: the write path checks the key's row (the report carries it as read), so a key this
        process has seen valid is taken from memory (decision 0059)."""
        key = form.get("api_key") or request.query_params.get("api_key") or _basic_user(request)
        if not key:
            return None, _error(403, "缺少 api_key")
        found = api_keys.known_channel(conn.engine, key) if checked else None
        if found is None:
            found = channel(conn, key)
            if found is not None and checked:
                api_keys.remember(conn.engine, key, found)
        if found is None:
            return None, _error(403, "api_key 无效或已吊销")
        if not api_keys.LIMITS.allow(found):
            wait = api_keys.LIMITS.seconds_left()
            over = _json([{"code": 429, "description": f"调用过于频繁，请 {wait} 秒后再试"}], 429)
            over.headers["Retry-After"] = str(wait)
            return None, over
        return found, None

    def services_list(request: Request, form: dict[str, Any]) -> Response:
        return _json(open311.service_list())

    def service_definition(request: Request, form: dict[str, Any]) -> Response:
        found = open311.service_definition(request.path_params["code"])
        if found is None:
            return _error(404, f"未知的事项代码：{request.path_params['code'][:40]}")
        return _json(found)

    def post_request(request: Request, form: dict[str, Any]) -> Response:
        try:
            return file_request(request, form)
        except api_keys.KeyChanged as changed:
            # The key's row changed since this process read it (revoked, or re-scoped by a boundary
            # import, in another process): nothing was written. Forgotten, and the request filed again
            # on the row as it reads now (decision 0059).
            api_keys.forget(changed.key_id)
        try:
            return file_request(request, form)
        except api_keys.KeyChanged:  # changed again at once: told as refused, the client may retry
            return _error(403, "api_key 无效或已吊销")

    def file_request(request: Request, form: dict[str, Any]) -> Response:
        engine = store()
        uow = open311.unit_of_work(engine)
        # A key seen valid is not read again where the write path checks it (decision 0059): SQLite's
        # group commit in its batch's transaction; PostgreSQL's read ahead of the duplicates in the same
        # statement (it writes at once, or in a batch that checks too). SQLite without the group commit
        # reads the key on each call.
        group = group_commit(engine)
        checked = group is not None or not uow.one_writer
        try:
            # The key, the checks and the report's reads on one pooled connection; on PostgreSQL the
            # report's rows too, in one statement (decision 0057). Elsewhere the connection is given
            # back before the write waits for its batch (a request never holds two).
            with open311.reader(engine) as conn:
                who, refused = authorised(request, form, conn, checked)
                if refused is not None or who is None:
                    return refused or _error(403, "api_key 无效")
                filing = open311.prepare_request(
                    uow,
                    who,
                    reader=conn,
                    grouped=True,
                    service_code=form.get("service_code"),
                    lat=form.get("lat"),
                    lon=form.get("long"),
                    description=form.get("description"),
                    address=form.get("address_string"),
                    crs=form.get("attribute[crs]"),
                    work_order=form.get("attribute[work_order]"),
                    media_url=form.get("media_url"),
                    photo=form.get("media") if isinstance(form.get("media"), bytes) else None,
                )
                event = open311.file_at_once(uow, conn, filing)
            if event is None:
                event = open311.file_prepared(uow, filing, group)
        except KeyReused:
            return _error(400, "该工单号已用于另一条内容不同的请求")
        except open311.FieldProblems as exc:
            return _problems(exc.problems)
        except OutsideArea as exc:
            return _error(400, str(exc))
        except OutOfScope as exc:
            return _error(403, str(exc))
        notice = "疑似重复事件，待人工合并" if event.duplicate_of_id else "已受理，将按时限办理"
        return _json([{"service_request_id": str(event.id), "service_notice": notice, "account_id": None}])

    def get_requests(request: Request, form: dict[str, Any]) -> Response:
        with open311.reader(store()) as conn:  # the key and the list on one pooled connection
            return list_requests(request, form, conn)

    def list_requests(request: Request, form: dict[str, Any], conn: Connection) -> Response:
        who, refused = authorised(request, form, conn)
        if refused is not None or who is None:
            return refused or _error(403, "api_key 无效")
        q = request.query_params
        problems: dict[str, str] = {}
        ids = None
        if q.get("service_request_id"):
            parts = [x.strip() for x in q["service_request_id"].split(",") if x.strip()]
            if len(parts) > MAX_IDS:
                problems["service_request_id"] = f"一次最多查询 {MAX_IDS} 个请求编号（收到 {len(parts)} 个）"
            elif not all(x.isascii() and x.isdigit() for x in parts):  # '²' is a digit int() refuses
                problems["service_request_id"] = "请求编号须为逗号分隔的整数"
            elif any(len(x) > 18 for x in parts):  # beyond the store's 64-bit ids: no such request
                problems["service_request_id"] = "请求编号过大（最多 18 位数字）"
            else:
                ids = [int(x) for x in parts]
        # trimmed as a POST's is (``urban, dispute`` as a person types a list)
        codes = [c.strip() for c in (q.get("service_code") or "").split(",") if c.strip()]
        unknown = [c for c in codes if open311.service_definition(c) is None]
        if unknown:
            problems["service_code"] = f"未知的事项代码：{'、'.join(unknown)[:80]}"
        status = (q.get("status") or "").strip() or None
        if status not in (None, "open", "closed"):
            problems["status"] = "status 只能是 open 或 closed"
        start = open311.parse_time(q.get("start_date"), "start_date", problems)
        end = open311.parse_time(q.get("end_date"), "end_date", problems)
        after = open311.parse_time(q.get("updated_after"), "updated_after", problems)
        after_id = None
        if q.get("after_request_id"):  # it pages within updated_after's second (alone it changes nothing)
            raw = q["after_request_id"].strip()
            if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
                problems["after_request_id"] = "after_request_id 须为请求编号（整数）"
            else:
                after_id = int(raw)
        if problems:
            return _problems(problems)
        return _json(
            open311.find_requests(
                conn,
                who,
                ids=ids,
                service_codes=codes,
                start=start,
                end=end,
                status=status,
                updated_after=after,
                after_id=after_id,
            )
        )

    def get_request(request: Request, form: dict[str, Any]) -> Response:
        raw = request.path_params["id"]
        with open311.reader(store()) as conn:  # the key and the request on one pooled connection
            who, refused = authorised(request, form, conn)
            if refused is not None or who is None:
                return refused or _error(403, "api_key 无效")
            if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:  # '²' is a digit int() refuses
                return _error(404, f"没有编号为 {raw[:20]} 的请求")
            found = open311.find_request(conn, who, int(raw))
        if found is None:  # absent or outside the key's area: the same answer
            return _error(404, f"没有编号为 {raw} 的请求")
        return _json([found])

    def get_token(request: Request, form: dict[str, Any]) -> Response:
        # Requests are filed synchronously: a token is never issued, so none is ever found.
        return _error(404, "本服务即时返回请求编号，不签发 token")

    def discovery(request: Request, form: dict[str, Any]) -> Response:
        base = str(request.base_url).rstrip("/") + prefix + BASE + "/"
        return _json(
            {
                "changeset": "2026-12-02T00:00:00+08:00",
                "contact": "数字驾驶舱管理员",
                "key_service": "向系统管理员申请（python -m services.api_keys create）",
                "endpoints": [
                    {
                        "specification": "http://wiki.open311.org/GeoReport_v2",
                        "url": base,
                        "changeset": "2026-12-02T00:00:00+08:00",
                        "type": "production",
                        "formats": ["application/json", "text/xml"],
                    }
                ],
            }
        )

    def openapi(request: Request, form: dict[str, Any]) -> Response:
        return _json(document(prefix + BASE))

    p = prefix + BASE
    return [
        _EveryMethod(f"{p}/discovery.{{fmt}}", guard(discovery, root="discovery")),
        _EveryMethod(f"{p}/openapi.{{fmt}}", guard(openapi)),
        _EveryMethod(f"{p}/services.{{fmt}}", guard(services_list, root="services")),
        _EveryMethod(f"{p}/services/{{code}}.{{fmt}}", guard(service_definition, root="service_definition")),
        _EveryMethod(f"{p}/requests.{{fmt}}", guard(get_requests, post_request, root="service_requests")),
        _EveryMethod(f"{p}/requests/{{id}}.{{fmt}}", guard(get_request, root="service_requests")),
        _EveryMethod(f"{p}/tokens/{{token}}.{{fmt}}", guard(get_token, root="service_requests")),
        # last: any other address under the API (no format, a path it does not have) is the error list,
        # not Starlette's plain "Not Found" (nor, under serve.py, the app's HTML page answered 200)
        _EveryMethod(p, _unknown),
        _EveryMethod(f"{p}/{{rest:path}}", _unknown),
    ]


async def _unknown(request: Request) -> Response:
    return _error(
        404,
        "没有这个接口地址：可用 discovery、services、services/{事项代码}、requests、requests/{请求编号}、"
        "tokens/{token}、openapi，路径以 .json 或 .xml 结尾",
    )


MAX_IDS = 200
