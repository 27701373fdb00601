"""Opening the report in a browser when server.auth_token is set: POST the token once, then a session cookie.

Over real HTTP against the daemon's server (emulated workspaces): the Bearer header keeps working for
scripts and Prometheus, the cookie is HttpOnly + SameSite=Strict and never holds the token, and the
token never appears in a URL, a page or a log line.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest
from conftest import Pair

from dbsync.scheduler import Daemon
from dbsync.server import SESSION_COOKIE, SESSION_SECONDS, StatusServer

TOKEN = "login-auth-token-0123456789"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def served(pair: Pair) -> Iterator[tuple[StatusServer, Clock]]:
    pair.sync(only=["directories"])
    ctx = pair.context()
    clock = Clock()
    server = StatusServer(("127.0.0.1", 0), Daemon(ctx), TOKEN, clock=clock)
    server.start()
    try:
        yield server, clock
    finally:
        server.shutdown()
        server.server_close()
        ctx.store.close()


def _login(url: str, token: str) -> httpx.Response:
    return httpx.post(url + "/login", data={"token": token}, timeout=60)


def test_a_browser_signs_in_once_and_scripts_keep_the_bearer_header(
    served: tuple[StatusServer, Clock], caplog: pytest.LogCaptureFixture
) -> None:
    server, _ = served
    url = server.url
    caplog.set_level(logging.DEBUG)

    opened = httpx.get(url + "/report.html", timeout=60)  # a browser without a session is sent to the form
    assert opened.status_code == 303 and opened.headers["location"] == "/login"
    form = httpx.get(url + "/login", timeout=60)
    assert form.status_code == 200 and '<form method="post" action="/login">' in form.text
    assert 'type="password"' in form.text

    wrong = _login(url, "not-the-token")
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers and "not the server's token" in wrong.text

    signed_in = _login(url, TOKEN)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/report.html"
    cookie = signed_in.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    session = signed_in.cookies[SESSION_COOKIE]
    assert len(session) >= 32 and TOKEN not in cookie and session not in str(server.sessions)  # only its digest

    jar = {SESSION_COOKIE: session}
    page = httpx.get(url + "/report.html", cookies=jar, timeout=60)
    assert page.status_code == 200 and "state-ready" in page.text and TOKEN not in page.text
    assert httpx.get(url + "/metrics", cookies=jar, timeout=60).status_code == 200
    assert httpx.get(url + "/report", cookies=jar, timeout=60).status_code == 200

    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.get(url + "/metrics", headers=bearer, timeout=60).status_code == 200  # scrapers, scripts
    assert httpx.get(url + "/report", headers=bearer, timeout=60).status_code == 200
    assert httpx.get(url + "/metrics", timeout=60).status_code == 401
    forged = {SESSION_COOKIE: session[:-2] + "xx"}
    assert httpx.get(url + "/metrics", cookies=forged, timeout=60).status_code == 401

    server_lines = " ".join(r.getMessage() for r in caplog.records if r.name.startswith("dbsync"))
    assert "POST /login" in server_lines  # the server's request log is captured ...
    assert TOKEN not in server_lines and session not in server_lines  # ... and holds neither secret


def test_a_token_in_the_url_does_not_sign_in(served: tuple[StatusServer, Clock]) -> None:
    server, _ = served
    answer = httpx.get(server.url + f"/login?token={TOKEN}", timeout=60)
    assert "set-cookie" not in answer.headers
    assert httpx.post(server.url + f"/login?token={TOKEN}", timeout=60).status_code == 401
    oversized = httpx.post(server.url + "/login", content=b"token=" + b"x" * 10_000, timeout=60)
    assert oversized.status_code == 400 and "set-cookie" not in oversized.headers


def test_a_session_ends_at_logout_and_after_its_lifetime(served: tuple[StatusServer, Clock]) -> None:
    server, clock = served
    first = _login(server.url, TOKEN).cookies[SESSION_COOKIE]
    second = _login(server.url, TOKEN).cookies[SESSION_COOKIE]
    assert first != second

    out = httpx.post(server.url + "/logout", cookies={SESSION_COOKIE: first}, timeout=60)
    assert out.status_code == 303 and "Max-Age=0" in out.headers["set-cookie"]
    assert httpx.get(server.url + "/metrics", cookies={SESSION_COOKIE: first}, timeout=60).status_code == 401
    assert httpx.get(server.url + "/metrics", cookies={SESSION_COOKIE: second}, timeout=60).status_code == 200

    clock.now += SESSION_SECONDS + 1
    assert httpx.get(server.url + "/metrics", cookies={SESSION_COOKIE: second}, timeout=60).status_code == 401
