"""Metric label sets stay bounded: requests cannot mint new series."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_made_up_methods_share_one_label(client: TestClient) -> None:
    for i in range(20):
        assert client.request(f"BREW{i}", "/v1/score").status_code == 405
    client.request("DELETE", f"/v1/users/u{i}")
    exposition = client.get("/metrics").text
    assert "BREW" not in exposition
    assert 'method="other",route="/v1/score",status="405"} 20.0' in exposition
    assert 'method="DELETE",route="/v1/users/{user_id}"' in exposition
