from django.urls import reverse


def test_login_lands_on_dashboard(client, member):
    response = client.post(reverse("login"), {"username": "member", "password": "member-password"})
    assert response.status_code == 302
    assert response["Location"] == reverse("reviews:dashboard")


def test_wrong_password_says_so(client, member):
    response = client.post(reverse("login"), {"username": "member", "password": "nope"})
    assert response.status_code == 200
    assert "didn't match" in response.content.decode()


def test_login_form_has_csrf(db):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    response = strict.post(reverse("login"), {"username": "member", "password": "x"})
    assert response.status_code == 403


def test_logout_needs_post(member_client):
    assert member_client.get(reverse("logout")).status_code == 405
    assert member_client.post(reverse("logout")).status_code == 302
