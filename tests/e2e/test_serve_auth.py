"""`carehub serve` as an operator runs it: demo sign-in only when the settings say so, and an access log that
never writes a search's criteria."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from hub.access.tokens import DemoIssuer
from tests.support.cli import CARHUB, carehub, hub_env
from tests.support.ports import free_port
from tests.support.waiting import wait_until_served

pytestmark = pytest.mark.slow  # one of the suite's longest (make test runs it)

NHS_NUMBER = "9434765919"
FAMILY = "Zabrowski"


@contextmanager
def served(env: dict[str, str], log: Path, *extra: str) -> Iterator[str]:
    """`carehub serve` on a free port, its output in ``log``; yields the base URL; stops it after."""
    port = free_port()
    with log.open("w") as out:
        server = subprocess.Popen([*CARHUB, "serve", "--port", str(port), *extra], env=env, stdout=out,
                                  stderr=subprocess.STDOUT)
    try:
        wait_until_served(f"http://127.0.0.1:{port}/health", server, "carehub serve", log=log)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_default_serve_has_no_demo_sign_in(database_url: str, tmp_path: Path) -> None:
    env = hub_env(database_url, tmp_path / "var")  # no CAREHUB_AUTH__DEMO: the shipped config/hub.toml
    carehub("db", "upgrade", env=env)
    # the demo key exists on disk (an earlier demo made it): a server without demo sign-in still refuses its tokens
    forged = DemoIssuer("https://carehub.local/demo", tmp_path / "var", "carehub").issue("admin.lee", "admin")
    log = tmp_path / "serve.log"
    with served(env, log) as base:
        page = requests.get(f"{base}/sign-in", headers={"Accept": "text/html"}, timeout=10)
        assert page.status_code == 404 and "switched off" in page.text
        signed = requests.post(f"{base}/sign-in", data={"user": "admin.lee"}, allow_redirects=False, timeout=10)
        assert signed.status_code == 404 and "set-cookie" not in signed.headers
        assert requests.get(f"{base}/.well-known/jwks.json", timeout=10).json() == {"keys": []}
        for path in ("/api/persons?name=hale", "/fhir/Patient?family=hale", "/api/ops/status"):
            r = requests.get(f"{base}{path}", headers={"Authorization": f"Bearer {forged}"}, timeout=10)
            assert r.status_code == 401, (path, r.status_code, r.text)
        cookie = requests.get(f"{base}/persons", cookies={"carehub_token": forged}, allow_redirects=False,
                              headers={"Accept": "text/html"}, timeout=10)
        assert cookie.status_code in (303, 401)
    assert "demo sign-in is ON" not in log.read_text()


def test_demo_sign_in_when_switched_on_warns_and_signs_in(database_url: str, tmp_path: Path) -> None:
    env = hub_env(database_url, tmp_path / "var", CAREHUB_AUTH__DEMO="true")
    carehub("db", "upgrade", env=env)
    log = tmp_path / "serve.log"
    with served(env, log) as base:
        signed = requests.post(f"{base}/sign-in", data={"user": "dr.patel"}, allow_redirects=False, timeout=10)
        assert signed.status_code == 303 and "carehub_token" in signed.headers["set-cookie"]
    assert "demo sign-in is ON" in log.read_text()


def test_serve_refuses_the_demo_issuer_beside_a_real_tenant(database_url: str, tmp_path: Path) -> None:
    tenant = [{"issuer": "https://login.microsoftonline.com/0000-tenant/v2.0",
               "jwks_uri": "https://login.microsoftonline.com/0000-tenant/discovery/v2.0/keys"}]
    env = hub_env(database_url, tmp_path / "var", CAREHUB_AUTH__DEMO="true",
                  CAREHUB_AUTH__ISSUERS=json.dumps(tenant))
    proc = carehub("serve", "--port", str(free_port()), env=env, check=False, timeout=60)
    assert proc.returncode != 0
    assert "auth.demo" in proc.stderr and "auth.issuers" in proc.stderr
    # the tenant alone serves
    alone = hub_env(database_url, tmp_path / "var", CAREHUB_AUTH__ISSUERS=json.dumps(tenant))
    carehub("db", "upgrade", env=alone)
    with served(alone, tmp_path / "tenant.log") as base:
        assert requests.get(f"{base}/health", timeout=10).status_code == 200


@pytest.mark.parametrize("workers", ["1", "2"])  # uvicorn alone, and gunicorn's uvicorn workers
def test_access_log_writes_paths_without_the_search_criteria(database_url: str, tmp_path: Path, workers: str) -> None:
    env = hub_env(database_url, tmp_path / "var", CAREHUB_AUTH__DEMO="true")
    carehub("db", "upgrade", env=env)
    token = DemoIssuer("https://carehub.local/demo", tmp_path / "var", "carehub").issue("dr.patel", "clinician",
                                                                                        "ICT-1")
    auth = {"Authorization": f"Bearer {token}"}
    log = tmp_path / "serve.log"
    searches = [
        ("/api/persons", {"nhs_number": NHS_NUMBER}),
        ("/api/persons", {"name": FAMILY, "birth_date": "1961-02-17", "postcode": "CF10 1AA"}),
        ("/fhir/Patient", {"identifier": f"https://fhir.nhs.uk/Id/nhs-number|{NHS_NUMBER}"}),
        ("/fhir/Patient", {"family": FAMILY, "birthdate": "1961-02-17"}),
        ("/persons", {"q": FAMILY, "nhs_number": NHS_NUMBER}),
    ]
    with served(env, log, "--workers", workers) as base:
        for path, params in searches:
            requests.get(f"{base}{path}", params=params, headers=auth, timeout=10)
            requests.get(f"{base}{path}", params=params, timeout=10)  # refused (401) requests are logged too
        requests.get(f"{base}/health", params={"nhs": NHS_NUMBER}, timeout=10)
    text = log.read_text()
    assert '"GET /api/persons HTTP/1.1" 200' in text and '"GET /fhir/Patient HTTP/1.1" 401' in text, text
    for secret in (NHS_NUMBER, FAMILY, "1961-02-17", "CF10", "?"):
        assert secret not in text, (secret, text)


def test_carehub_demo_serves_with_demo_sign_in_on(tmp_path: Path) -> None:
    # The demo's own embedded store (what `make demo` runs); the sign-in does not depend on the store's kind.
    env = hub_env(f"sqlite:///{tmp_path / 'demo.db'}", tmp_path / "var", CAREHUB_DEMO__PEOPLE="60")
    port = free_port()
    log = tmp_path / "demo.log"
    with log.open("w") as out:
        demo = subprocess.Popen([*CARHUB, "demo", "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_served(f"{base}/health", demo, "carehub demo", timeout=400, log=log)
        signed = requests.post(f"{base}/sign-in", data={"user": "dq.hughes"}, allow_redirects=False, timeout=10)
        assert signed.status_code == 303 and "carehub_token" in signed.headers["set-cookie"]
        token = signed.cookies["carehub_token"]
        r = requests.get(f"{base}/api/identity/reviews", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert r.status_code == 200, r.text
    finally:
        demo.terminate()
        demo.wait(timeout=30)
    text = log.read_text()
    assert "demo sign-in is ON" in text
    # terminated, the demo stopped the simulators it started: their ports are free again
    ports = [int(line.rsplit(":", 1)[1]) for line in text.splitlines() if line.startswith("simulator ")]
    assert len(ports) == 2, text
    for sim_port in ports:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # nothing listens (a closed connection may wait)
            sock.bind(("127.0.0.1", sim_port))
