"""Pages load nothing from other hosts: every asset is served by Tally itself."""

from __future__ import annotations

import re

import pytest

EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""", re.IGNORECASE)


@pytest.mark.parametrize("path", ["/docs", "/console/sign-in", "/m"])
def test_page_has_no_external_assets(client, path: str) -> None:  # type: ignore[no-untyped-def]
    response = client.get(path)
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
    assert not EXTERNAL.search(response.text), EXTERNAL.findall(response.text)


def test_api_docs_assets_are_served_locally(client) -> None:  # type: ignore[no-untyped-def]
    for asset in (
        "/static/vendor/swagger-ui-bundle.js",
        "/static/vendor/swagger-ui.css",
        "/static/favicon.svg",
    ):
        assert client.get(asset).status_code == 200, asset
