"""The API sign-in works on both backends with the demo city."""

from tests.web import api_token, bearer


def test_api_sign_in_and_me(client):
    token = api_token(client, "analyst")
    response = client.get("/api/me", headers=bearer(token))
    assert response.status_code == 200
    assert response.json()["roles"] == ["analyst"]
