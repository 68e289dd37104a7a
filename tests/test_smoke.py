def test_healthz_answers_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_manager_signs_in_with_password(client, manager):
    from tests.conftest import PASSWORD

    response = client.form_post("/login", {"email": manager.email, "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/overview").status_code == 200
