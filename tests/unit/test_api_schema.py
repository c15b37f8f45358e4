"""The OpenAPI schema and its documentation pages."""

import re

import pytest
import yaml
from django.core.management import call_command
from django.test import Client

pytestmark = pytest.mark.django_db


def test_schema_validates_without_warnings(tmp_path):
    # --fail-on-warn makes any warning or error exit non-zero.
    path = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    assert "openapi" in yaml.safe_load(path.read_text())


def test_schema_served_as_json():
    response = Client().get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in ("/api/logs/", "/api/stats/", "/api/alerts/", "/api/deliveries/"):
        assert path in paths


def test_intake_documents_status_codes():
    schema = Client().get("/api/schema/", HTTP_ACCEPT="application/json").json()
    responses = schema["paths"]["/api/logs/"]["post"]["responses"]
    for code in ("202", "400", "401", "403", "413", "415", "503"):
        assert code in responses
    assert "Retry-After" in responses["503"]["headers"]
    body = schema["paths"]["/api/logs/"]["post"]["requestBody"]
    branches = body["content"]["application/json"]["schema"]["oneOf"]
    assert [branch.get("type") for branch in branches] == [None, "array"]


def test_intake_declares_api_key_scheme():
    schema = Client().get("/api/schema/", HTTP_ACCEPT="application/json").json()
    scheme = schema["components"]["securitySchemes"]["apiKey"]
    assert scheme == scheme | {"type": "http", "scheme": "bearer"}
    security = schema["paths"]["/api/logs/"]["post"]["security"]
    assert {"apiKey": []} in security


def test_docs_page_loads_local_assets():
    client = Client()
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources
    # Every script and style comes from this server, none from a CDN.
    for source in sources:
        assert source.startswith("/"), source
    scripts = [source for source in sources if source.endswith(".js")]
    assert scripts
    for script in scripts:
        assert client.get(script).status_code == 200, script


def test_unrouted_api_path_gets_json_404():
    # The router's id pattern excludes dots, so this URL matches no route.
    response = Client().get("/api/logs/1.5/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_unrouted_page_keeps_html_404():
    response = Client().get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_patterns_endpoint_documented():
    schema = Client().get("/api/schema/", HTTP_ACCEPT="application/json").json()
    listing = schema["paths"]["/api/patterns/"]["get"]
    names = {parameter["name"] for parameter in listing["parameters"]}
    assert {"service", "since", "until", "ordering", "page"} <= names
    assert "/api/patterns/{id}/" in schema["paths"]
    item = schema["components"]["schemas"]["Pattern"]["properties"]
    assert {"template", "count_in_range", "entries"} <= set(item)


def test_logs_pattern_filter_documented():
    schema = Client().get("/api/schema/", HTTP_ACCEPT="application/json").json()
    parameters = schema["paths"]["/api/logs/"]["get"]["parameters"]
    pattern = next(p for p in parameters if p["name"] == "pattern")
    assert pattern["schema"]["type"] == "integer"
