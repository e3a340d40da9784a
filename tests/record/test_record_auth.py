"""Authentication: bearer JWTs (RS256) from trusted issuers; 401 in the dialect of each interface."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest
import responses
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from hub.access.tokens import DemoIssuer, TokenVerifier
from hub.errors import Unauthenticated
from hub.settings import AuthSettings, IssuerSettings
from tests.support.clock import SteppedClock
from tests.support.record_hub import Hub


def test_no_token_is_401_problem_on_api_and_operation_outcome_on_fhir(hub: Hub) -> None:
    api = hub.client.get("/api/persons", params={"name": "hale"})
    assert api.status_code == 401
    assert api.headers["content-type"].startswith("application/problem+json")
    assert api.headers["www-authenticate"].startswith("Bearer")
    fhir = hub.client.get("/fhir/Patient", params={"family": "hale"})
    assert fhir.status_code == 401
    body = fhir.json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["code"] == "login"


def test_bad_tokens_are_refused(hub: Hub, tmp_path: Path) -> None:
    good = hub.token("sw.owen", "social_worker", "ASC-OPN")
    stranger = DemoIssuer(hub.settings.auth.demo_issuer, tmp_path / "other", "carehub")
    wrong_audience = DemoIssuer(hub.settings.auth.demo_issuer, hub.settings.data_dir, "someone-else")
    expired = hub.client.app.state.demo_issuer.issue("sw.owen", "social_worker", "ASC-OPN", ttl=-600)  # type: ignore[attr-defined]
    hs256 = jwt.encode({"iss": hub.settings.auth.demo_issuer, "aud": "carehub", "sub": "x", "exp": time.time() + 60,
                        "iat": time.time(), "roles": ["admin"]}, "hmac-secret-of-32-bytes-or-more!", algorithm="HS256")
    for token in ("not-a-jwt", good[:-4] + "AAAA", stranger.issue("sw.owen", "social_worker"),
                  wrong_audience.issue("sw.owen", "social_worker"), expired, hs256):
        r = hub.client.get("/api/persons", params={"name": "hale"}, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, token
    ok = hub.client.get("/api/persons", params={"name": "hale"}, headers={"Authorization": f"Bearer {good}"})
    assert ok.status_code == 200


def test_jwks_endpoint_publishes_the_demo_key(hub: Hub, tmp_path: Path) -> None:
    jwks = hub.client.get("/.well-known/jwks.json").json()
    assert jwks["keys"][0]["kty"] == "RSA" and "d" not in jwks["keys"][0]
    # a verifier that trusts the demo issuer only through a JWKS file accepts the demo token
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks))
    auth = AuthSettings(issuers=[IssuerSettings(issuer=hub.settings.auth.demo_issuer,
                                                                  jwks_file=path)])
    claims = TokenVerifier(auth, None).verify(hub.token("dr.patel", "clinician", "ICT-1"))
    assert claims.subject == "dr.patel" and claims.roles == ("clinician",) and claims.team == "ICT-1"


@responses.activate
def test_remote_issuer_keys_are_fetched_from_jwks_uri() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "tenant-key-1", "alg": "RS256", "use": "sig"})
    responses.get("https://login.example.test/tenant/keys", json={"keys": [jwk]})
    auth = AuthSettings(issuers=[IssuerSettings(
        issuer="https://login.example.test/tenant/v2.0", jwks_uri="https://login.example.test/tenant/keys")])
    verifier = TokenVerifier(auth, None)
    now = int(time.time())
    token = jwt.encode({"iss": "https://login.example.test/tenant/v2.0", "aud": "carehub", "sub": "u-42",
                        "iat": now, "exp": now + 300, "roles": ["clinician", "auditor"]}, key, algorithm="RS256",
                       headers={"kid": "tenant-key-1"})
    claims = verifier.verify(token)
    assert claims.roles == ("clinician", "auditor")
    verifier.verify(token)
    assert len(responses.calls) == 1  # cached
    with pytest.raises(Unauthenticated):
        verifier.verify(jwt.encode({"iss": "https://login.example.test/tenant/v2.0", "aud": "carehub", "sub": "u",
                                    "iat": now, "exp": now + 300}, key, algorithm="RS256",
                                   headers={"kid": "unknown-kid"}))


def test_clock_skew_is_allowed(hub: Hub) -> None:
    token = hub.client.app.state.demo_issuer.issue("sw.owen", "social_worker", "ASC-OPN", ttl=-30)  # type: ignore[attr-defined]
    r = hub.client.get("/api/persons", params={"name": "hale"}, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200


def test_a_token_is_valid_from_its_not_before_to_its_expiry_on_the_verifiers_clock(tmp_path: Path) -> None:
    clock = SteppedClock()
    auth = AuthSettings(demo=True, clock_skew_seconds=0)
    issuer = DemoIssuer(auth.demo_issuer, tmp_path, auth.audience, clock.timestamp)
    verifier = TokenVerifier(auth, issuer, clock.timestamp)
    now = int(clock.timestamp())
    later = jwt.encode({"iss": issuer.issuer, "aud": issuer.audience, "sub": "dr.patel", "iat": now, "nbf": now + 300,
                        "exp": now + 900, "roles": ["clinician"]}, issuer.private_key(), algorithm="RS256",
                       headers={"kid": issuer.kid})
    with pytest.raises(Unauthenticated, match="not valid yet"):
        verifier.verify(later)
    clock.advance(301)
    assert verifier.verify(later).subject == "dr.patel"
    clock.advance(600)
    with pytest.raises(Unauthenticated, match="expired"):
        verifier.verify(later)
    # the demo issuer stamps its tokens on its clock: issued an hour ahead, such a token is not valid yet on the
    # system's clock, and is on the clock it was issued on
    clock.advance(3600)
    ahead = issuer.issue("dr.patel", "clinician", "ICT-1", ttl=600)
    assert jwt.decode(ahead, options={"verify_signature": False})["iat"] == int(clock.timestamp())
    with pytest.raises(Unauthenticated, match="not valid yet"):
        TokenVerifier(auth, issuer).verify(ahead)
    assert verifier.verify(ahead).team == "ICT-1"


def test_role_not_in_token_or_unknown_purpose_is_403(hub: Hub) -> None:
    h = hub.headers("sw.owen", "social_worker", "ASC-OPN", **{"X-Role": "admin"})
    assert hub.client.get("/api/persons", params={"name": "hale"}, headers=h).status_code == 403
    h = hub.headers("fin.jones", "finance_officer", **{"X-Purpose": "direct_care"})
    r = hub.client.get("/api/persons", params={"name": "hale"}, headers=h)
    assert r.status_code == 403 and "purpose" in r.json()["detail"]
    r = hub.client.get("/api/persons", params={"name": "hale"}, headers=hub.headers("x", "janitor"))
    assert r.status_code == 403


def test_carehub_token_command_prints_a_token_the_hub_accepts(hub: Hub) -> None:
    off = {"CAREHUB_DATA_DIR": str(hub.settings.data_dir), "CAREHUB_DATABASE_URL": hub.store.url,
           "PATH": "/usr/bin:/bin"}
    env = {**off, "CAREHUB_AUTH__DEMO": "true"}
    proc = subprocess.run([sys.executable, "-m", "hub", "token", "--user", "dr.patel", "--role", "clinician",
                           "--team", "ICT-1", "--ttl", "120"], env=env, capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr
    token = proc.stdout.strip()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 120
    r = hub.client.get("/fhir/Patient", params={"family": "hale"}, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    bad = subprocess.run([sys.executable, "-m", "hub", "token", "--user", "x", "--role", "janitor"], env=env,
                         capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert bad.returncode != 0
    # demo sign-in off (the default): the demo issuer signs nothing
    refused = subprocess.run([sys.executable, "-m", "hub", "token", "--user", "x", "--role", "clinician"], env=off,
                             capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert refused.returncode != 0 and "auth.demo" in refused.stderr and not refused.stdout


def test_carehub_token_carries_every_role_repeated(hub: Hub) -> None:
    env = {"CAREHUB_DATA_DIR": str(hub.settings.data_dir), "CAREHUB_DATABASE_URL": hub.store.url,
           "PATH": "/usr/bin:/bin", "CAREHUB_AUTH__DEMO": "true"}
    proc = subprocess.run([sys.executable, "-m", "hub", "token", "--user", "dr.both", "--role", "clinician",
                           "--role", "auditor", "--team", "ICT-1"], env=env, capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr
    token = proc.stdout.strip()
    assert jwt.decode(token, options={"verify_signature": False})["roles"] == ["clinician", "auditor"]
    auth = {"Authorization": f"Bearer {token}"}
    # the first role is the default; the second is taken with X-Role
    assert hub.client.get("/fhir/Patient", params={"family": "hale"}, headers=auth).status_code == 200
    audit = hub.client.get("/api/audit/break-glass", headers={**auth, "X-Role": "auditor"})
    assert audit.status_code == 200, audit.text
    assert hub.client.get("/api/audit/break-glass", headers=auth).status_code == 403  # as clinician
