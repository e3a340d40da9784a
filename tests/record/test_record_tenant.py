"""A real tenant works: a second issuer of the hub's own (an Entra ID-like tenant) with its JWKS on loopback HTTP.

Its tokens come in both Entra ID forms (v2.0: ``login.microsoftonline.com/{tenant}/v2.0`` with the client id as
audience; v1.0: ``sts.windows.net/{tenant}/`` with the app id URI), roles from app roles or from groups mapped in
config. Wrong audience, wrong tenant, another key or a malformed roles claim are refused with a 401 that names no
library class.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from jwt.algorithms import RSAAlgorithm

from hub.api.app import create_app
from hub.settings import AuthSettings, IssuerSettings, Settings
from hub.store.db import Store
from tests.support.synthetic import Dataset, add_named

TENANT = "6d1f0a52-0000-4c1e-9b1a-synthetic01"
V2 = f"https://login.microsoftonline.com/{TENANT}/v2.0"
V1 = f"https://sts.windows.net/{TENANT}/"
CLIENT_ID = "a1b2c3d4-0000-4000-8000-carehubapp01"
APP_ID_URI = "api://carehub-council"
SOCIAL_WORKERS_GROUP = "0f9e8d7c-0000-4000-8000-group-sw-01"


@dataclass
class Tenant:
    """A local issuer: its signing key, the loopback address of its JWKS and a client to the hub trusting it."""

    key: rsa.RSAPrivateKey
    jwks_uri: str
    client: TestClient

    def token(self, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": V2, "aud": CLIENT_ID, "sub": "u-7f3a", "iat": now, "nbf": now, "exp": now + 600,
                "tid": TENANT, **claims}
        return jwt.encode({k: v for k, v in body.items() if v is not None}, self.key, algorithm="RS256",
                          headers={"kid": "tenant-key-1"})


def jwks_server(document: dict[str, Any]) -> tuple[ThreadingHTTPServer, str]:
    """Serve ``document`` at /discovery/v2.0/keys on a free loopback port."""
    body = json.dumps(document).encode()

    class Keys(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server hook's name
            if self.path != "/discovery/v2.0/keys":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Keys)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/discovery/v2.0/keys"


@pytest.fixture
def tenant(store: Store, tmp_path: Path) -> Iterator[Tenant]:
    data = Dataset()
    add_named(data)
    with store.session() as session:
        data.load(session)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "tenant-key-1", "alg": "RS256", "use": "sig"})
    server, uri = jwks_server({"keys": [jwk]})
    auth = AuthSettings(demo=False, issuers=[IssuerSettings(
        issuer=V2, issuer_forms=[V1], jwks_uri=uri, audiences=[CLIENT_ID, APP_ID_URI], role_claim="roles",
        group_claim="groups", group_roles={SOCIAL_WORKERS_GROUP: "social_worker"})])
    settings = Settings(database_url=store.url, data_dir=tmp_path / "var", auth=auth)
    try:
        with TestClient(create_app(settings, store)) as client:
            yield Tenant(key, uri, client)
    finally:
        server.shutdown()


def get(t: Tenant, token: str, path: str = "/fhir/Patient", **headers: str) -> Any:
    return t.client.get(path, params={"family": "hale"} if path.endswith(("Patient", "persons")) else None,
                        headers={"Authorization": f"Bearer {token}", **headers})


def test_v2_and_v1_tokens_of_the_tenant_are_accepted(tenant: Tenant) -> None:
    v2 = tenant.token(roles=["clinician"])
    assert get(tenant, v2).status_code == 200
    v1 = tenant.token(iss=V1, aud=APP_ID_URI, roles=["clinician"], ver="1.0")
    r = get(tenant, v1)
    assert r.status_code == 200, r.text
    assert r.json()["resourceType"] == "Bundle"


def test_roles_from_groups_mapped_in_config(tenant: Tenant) -> None:
    grouped = tenant.token(groups=["another-group", SOCIAL_WORKERS_GROUP], team="ASC-OPN")
    r = get(tenant, grouped, "/api/persons")
    assert r.status_code == 200, r.text
    # the group gives social_worker only: an admin route is refused
    assert get(tenant, grouped, "/api/ops/status").status_code == 403
    # a group the config does not map gives no role at all
    assert get(tenant, tenant.token(groups=["another-group"]), "/api/persons").status_code == 403


@pytest.mark.parametrize("claims", [
    {"aud": "carehub", "roles": ["clinician"]},                               # not this app's audience
    {"aud": "api://someone-else", "iss": V1, "roles": ["clinician"]},
    {"iss": "https://login.microsoftonline.com/another-tenant/v2.0", "roles": ["clinician"]},
    {"iss": "https://sts.windows.net/another-tenant/", "aud": APP_ID_URI, "roles": ["clinician"]},
    {"roles": 7},                                                             # a roles claim that is a number
    {"roles": ["clinician", 3]},
    {"groups": {"a": 1}, "roles": ["clinician"]},
    {"team": 42, "roles": ["clinician"]},
    {"exp": int(time.time()) - 3600, "roles": ["clinician"]},
    {"sub": None, "roles": ["clinician"]},
])
def test_wrong_audience_issuer_or_claims_are_401(tenant: Tenant, claims: dict[str, Any]) -> None:
    for path in ("/fhir/Patient", "/api/persons"):
        r = get(tenant, tenant.token(**claims), path)
        assert r.status_code == 401, (path, r.status_code, r.text)
        body = r.json()
        detail = body["detail"] if path.startswith("/api") else body["issue"][0]["diagnostics"]
        assert "Error" not in detail and "jwt" not in detail.lower(), detail
    assert r.headers["content-type"].startswith("application/problem+json")


def test_a_key_the_tenant_does_not_publish_is_refused(tenant: Tenant) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    forged = jwt.encode({"iss": V2, "aud": CLIENT_ID, "sub": "u", "iat": now, "exp": now + 600,
                         "roles": ["admin"]}, other, algorithm="RS256", headers={"kid": "tenant-key-1"})
    r = get(tenant, forged, "/api/ops/status")
    assert r.status_code == 401 and "signature" in r.json()["detail"]
