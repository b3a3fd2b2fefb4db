"""A published Open311 client from PyPI against the running API: ``georeport`` (GeoReport v2 wrapper,
Apache-2.0, not written here) lists the services, reads a service definition, lists requests and reads
one back, in JSON and in XML, over real HTTP from a uvicorn server on a real store (either backend).

georeport has no call to file a request (its API is read-only), so filing goes through plain ``requests``
as a hotline system would; the older ``open311`` package, which can file, is Python 2 only. georeport
sends no ``api_key`` on GET: the key travels as the HTTP Basic user name in the address
(``http://KEY:@host/open311/v2``), which the API accepts beside ``api_key`` (docs/open311.md).
"""

from __future__ import annotations

import pytest
import requests
from georeport import GeoReport

from tests.builders import grid_centre
from tests.open311_server import served, square_store


@pytest.fixture(scope="module")
def server(new_store_url):
    with square_store(new_store_url()) as (engine, key), served(engine) as host:
        yield host, key("12345", "990001001")[1]


def _file(host: str, key: str, work_order: str) -> str:
    """File one 12345 work order (the way georeport cannot) and return its service_request_id."""
    lon, lat = grid_centre(0)
    answer = requests.post(
        f"http://{host}/open311/v2/requests.json",
        data={
            "api_key": key,
            "service_code": "urban",
            "lat": str(lat),
            "long": str(lon),
            "description": "人行道井盖缺失，夜间有行人跌倒风险",
            "attribute[work_order]": work_order,
        },
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()[0]["service_request_id"]


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_the_published_client_lists_services_and_reads_a_definition(server, fmt):
    host, key = server
    client = GeoReport(f"http://{key}:@{host}/open311/v2", output_format=fmt)
    services = client.get_service_list()
    codes = {s["service_code"]: s for s in services}
    assert {"urban", "work_safety", "public_security"} <= set(codes)
    assert codes["urban"]["service_name"] == "城镇管理"
    definition = client.get_service_definition("urban")
    assert definition["service_code"] == "urban"
    attributes = definition["attributes"]
    if fmt == "xml":  # xmltodict: <attributes><attribute>…</attribute>…</attributes>
        attributes = attributes["attribute"]
    assert {a["code"] for a in attributes} >= {"crs", "work_order"}


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_a_request_filed_over_http_is_listed_and_read_back_by_the_published_client(server, fmt):
    host, key = server
    filed = _file(host, key, f"GD-{fmt}-0001")
    client = GeoReport(f"http://{key}:@{host}/open311/v2", output_format=fmt)

    one = client.get_service_request(filed)
    assert one["service_request_id"] == filed
    assert one["service_code"] == "urban" and one["status"] == "open"
    assert one["description"] == "人行道井盖缺失，夜间有行人跌倒风险"
    assert one["requested_datetime"].endswith("+08:00")

    listed = client.get_service_requests(service_request_id=filed)
    if isinstance(listed, dict):  # xmltodict gives one <request> as a dict, several as a list
        listed = [listed]
    assert [r["service_request_id"] for r in listed] == [filed]
    open_ones = client.get_service_requests(service_code="urban", status="open")
    if isinstance(open_ones, dict):
        open_ones = [open_ones]
    assert filed in {r["service_request_id"] for r in open_ones}


def test_the_published_client_without_a_key_is_refused(server):
    host, _ = server
    client = GeoReport(f"http://{host}/open311/v2")
    with pytest.raises(requests.HTTPError) as refused:
        client.get_service_requests()
    assert refused.value.response.status_code == 403
    client = GeoReport(f"http://wrong-key:@{host}/open311/v2")
    with pytest.raises(requests.HTTPError) as refused:
        client.get_service_request("1")
    assert refused.value.response.status_code == 403
