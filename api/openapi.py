"""The OpenAPI 3.1 document of the Open311 API (hand-written; served at /open311/v2/openapi.json)."""

from __future__ import annotations

from typing import Any

_ERRORS = {
    "description": "错误列表（GeoReport v2）",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Errors"}}},
}
_KEY = {"name": "api_key", "in": "query", "required": True, "schema": {"type": "string"}}
_CODES = [
    "urban",
    "dispute",
    "environment",
    "market",
    "work_safety",
    "public_security",
    "natural_hazard",
    "livelihood",
]

#: One or more service codes, comma separated (GET requests' ``service_code``).
_CODE_LIST = "^({0})(,({0}))*$".format("|".join(_CODES))


def _ok(schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": "成功", "content": {"application/json": {"schema": schema}}}


def _q(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def document(base: str) -> dict[str, Any]:
    ref = lambda name: {"$ref": f"#/components/schemas/{name}"}  # noqa: E731
    errors = {"400": _ERRORS, "403": _ERRORS, "404": _ERRORS, "429": _ERRORS}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "数字驾驶舱 Open311 GeoReport v2 接口",
            "version": "2.0",
            "description": "事件上报、查询与状态同步（GeoReport v2，JSON）。扩展字段：cockpit_status、"
            "cockpit_status_label、level、department；查询扩展参数 updated_after、after_request_id。",
        },
        "servers": [{"url": base}],
        "paths": {
            "/services.json": {
                "get": {
                    "summary": "事项列表",
                    "responses": {"200": _ok({"type": "array", "items": ref("Service")})},
                }
            },
            "/services/{service_code}.json": {
                "get": {
                    "summary": "事项属性定义",
                    "parameters": [
                        {"name": "service_code", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "responses": {"200": _ok(ref("ServiceDefinition")), "404": _ERRORS},
                }
            },
            "/requests.json": {
                "get": {
                    "summary": "查询请求（密钥辖区内）",
                    "parameters": [
                        _KEY,
                        _q(
                            "service_request_id",
                            "逗号分隔的请求编号",
                            type="string",
                            pattern=r"^[0-9]{1,18}(,[0-9]{1,18})*$",
                        ),
                        _q("service_code", "逗号分隔的事项代码", type="string", pattern=_CODE_LIST),
                        _q("start_date", "上报时间起（ISO 8601）", type="string", format="date-time"),
                        _q("end_date", "上报时间止（ISO 8601）", type="string", format="date-time"),
                        _q("status", "open 或 closed", type="string", enum=["open", "closed"]),
                        _q(
                            "updated_after",
                            "扩展：状态同步。此时间（含该秒）及之后有更新的请求，按更新时间从早到晚；"
                            "下一次以最后一条的 updated_datetime 再查（该秒会再次返回，按编号去重）",
                            type="string",
                            format="date-time",
                        ),
                        _q(
                            "after_request_id",
                            "扩展：与 updated_after 同用（单独使用不起作用）；该秒内只返回编号大于此值的请求"
                            "（一页 1000 条都在同一秒时翻页）",
                            type="string",
                            pattern=r"^[0-9]{1,18}$",
                        ),
                    ],
                    "responses": {"200": _ok({"type": "array", "items": ref("Request")}), **errors},
                },
                "post": {
                    "summary": "上报请求",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/x-www-form-urlencoded": {"schema": ref("NewRequest")},
                            "multipart/form-data": {
                                "schema": {
                                    "allOf": [ref("NewRequest")],
                                    "properties": {"media": {"type": "string", "format": "binary"}},
                                }
                            },
                        },
                    },
                    "responses": {"200": _ok({"type": "array", "items": ref("Created")}), **errors},
                },
            },
            "/requests/{service_request_id}.json": {
                "get": {
                    "summary": "查询单个请求",
                    "parameters": [
                        _KEY,
                        {
                            "name": "service_request_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                    ],
                    "responses": {"200": _ok({"type": "array", "items": ref("Request")}), **errors},
                }
            },
        },
        "components": {
            "schemas": {
                "Errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["code", "description"],
                        "properties": {"code": {"type": "integer"}, "description": {"type": "string"}},
                    },
                },
                "Service": {
                    "type": "object",
                    "required": ["service_code", "service_name", "metadata", "type"],
                    "properties": {
                        "service_code": {"type": "string", "enum": _CODES},
                        "service_name": {"type": "string"},
                        "description": {"type": "string"},
                        "metadata": {"type": "boolean"},
                        "type": {"type": "string", "enum": ["realtime", "batch", "blackbox"]},
                        "keywords": {"type": "string"},
                        "group": {"type": "string"},
                    },
                },
                "ServiceDefinition": {
                    "type": "object",
                    "required": ["service_code", "attributes"],
                    "properties": {
                        "service_code": {"type": "string"},
                        "attributes": {"type": "array", "items": {"type": "object"}},
                    },
                },
                "NewRequest": {
                    "type": "object",
                    "required": ["api_key", "service_code", "lat", "long", "description"],
                    "properties": {
                        "api_key": {"type": "string"},
                        "service_code": {"type": "string", "enum": _CODES},
                        "lat": {"type": "number"},
                        "long": {"type": "number"},
                        "address_string": {"type": "string", "maxLength": 300},
                        "description": {"type": "string", "minLength": 1, "maxLength": 2000},
                        "media_url": {"type": "string"},
                        "attribute[crs]": {"type": "string", "enum": ["wgs84", "gcj02"]},
                        "attribute[work_order]": {"type": "string", "description": "渠道工单号（幂等键）"},
                    },
                },
                "Created": {
                    "type": "object",
                    "required": ["service_request_id"],
                    "properties": {
                        "service_request_id": {"type": "string"},
                        "service_notice": {"type": ["string", "null"]},
                        "account_id": {"type": ["string", "null"]},
                    },
                },
                "Request": {
                    "type": "object",
                    "required": [
                        "service_request_id",
                        "status",
                        "service_code",
                        "requested_datetime",
                        "lat",
                        "long",
                    ],
                    "properties": {
                        "service_request_id": {"type": "string"},
                        "status": {"type": "string", "enum": ["open", "closed"]},
                        "status_notes": {"type": ["string", "null"]},
                        "service_name": {"type": "string"},
                        "service_code": {"type": "string"},
                        "description": {"type": "string"},
                        "agency_responsible": {"type": ["string", "null"]},
                        "service_notice": {"type": ["string", "null"]},
                        "requested_datetime": {"type": "string", "format": "date-time"},
                        "updated_datetime": {"type": "string", "format": "date-time"},
                        "expected_datetime": {"type": ["string", "null"], "format": "date-time"},
                        "address": {"type": ["string", "null"]},
                        "address_id": {"type": ["string", "null"]},
                        "zipcode": {"type": ["string", "null"]},
                        "lat": {"type": "number"},
                        "long": {"type": "number"},
                        "media_url": {"type": ["string", "null"]},
                        "cockpit_status": {"type": "string", "description": "扩展：驾驶舱状态代码"},
                        "cockpit_status_label": {
                            "type": "string",
                            "description": "扩展：驾驶舱状态（已上报…已归档）",
                        },
                        "level": {"type": "string", "description": "扩展：紧急程度"},
                        "department": {"type": ["string", "null"], "description": "扩展：牵头处置部门"},
                    },
                },
            }
        },
    }
