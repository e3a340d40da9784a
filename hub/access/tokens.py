"""OAuth2 bearer tokens: verifying RS256 JWTs from the configured issuers, and the local demo issuer.

Every PyJWT and key-fetching failure becomes :class:`hub.errors.Unauthenticated`
here and nowhere else. A council points ``[auth]`` at its Entra ID tenant (a
``jwks_uri``); the demo signs with a key pair made on first use under
``data_dir/keys`` and serves its public half at ``/.well-known/jwks.json``.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from hub.errors import ConfigError, Unauthenticated
from hub.settings import AuthSettings, Settings, config_dir

ALGORITHM = "RS256"
KEY_FILE = "demo-signing-key.pem"
VERIFIED_TOKENS_KEPT = 10_000


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a verified token says about its bearer."""

    subject: str
    issuer: str
    roles: tuple[str, ...]
    team: str | None
    name: str | None
    expires: int


class DemoIssuer:
    """The local demo issuer: an RSA key pair under ``data_dir/keys``, made on first use; ``clock`` (seconds
    since the epoch) stamps the tokens it issues."""

    def __init__(self, issuer: str, data_dir: Path, audience: str, clock: Callable[[], float] = time.time) -> None:
        self.issuer = issuer
        self.audience = audience
        self.clock = clock
        self.path = data_dir / "keys" / KEY_FILE
        self._lock = threading.Lock()
        self._key: rsa.RSAPrivateKey | None = None

    def private_key(self) -> rsa.RSAPrivateKey:
        """The signing key, generated and saved (mode 0600) the first time it is needed."""
        with self._lock:
            if self._key is None:
                self._key = self._load_or_create()
            return self._key

    def _load_or_create(self) -> rsa.RSAPrivateKey:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
            try:
                # O_EXCL: when two processes race to create it, one key wins and both use it.
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "wb") as out:
                    out.write(pem)
        loaded = serialization.load_pem_private_key(self.path.read_bytes(), password=None)
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise ConfigError(f"{self.path} does not hold an RSA private key")
        return loaded

    @property
    def kid(self) -> str:
        """Key id: a stable digest of the public key."""
        public = self.private_key().public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return str(uuid.uuid5(uuid.NAMESPACE_OID, public.hex()))[:16]

    def jwks(self) -> dict[str, Any]:
        """The public key as a JWKS document."""
        jwk = json.loads(RSAAlgorithm.to_jwk(self.private_key().public_key()))
        jwk.update({"kid": self.kid, "alg": ALGORITHM, "use": "sig"})
        return {"keys": [jwk]}

    def issue(self, user: str, role: str | Sequence[str], team: str | None = None, ttl: int = 3600,
              name: str | None = None) -> str:
        """A signed token for ``user`` holding ``role`` (one or several, as a tenant's tokens carry them) and
        ``team``, valid for ``ttl`` seconds."""
        now = int(self.clock())
        roles = [role] if isinstance(role, str) else list(role)
        claims: dict[str, Any] = {
            "iss": self.issuer, "aud": self.audience, "sub": user, "iat": now, "nbf": now, "exp": now + ttl,
            "jti": str(uuid.uuid4()), "roles": roles, "name": name or user,
        }
        if team:
            claims["team"] = team
        return jwt.encode(claims, self.private_key(), algorithm=ALGORITHM, headers={"kid": self.kid})


class KeySet:
    """The public keys of one issuer, from a file, a URL (cached) or the demo issuer."""

    def __init__(self, *, uri: str | None = None, file: Path | None = None, demo: DemoIssuer | None = None,
                 cache_seconds: int = 300) -> None:
        self.uri, self.file, self.demo, self.cache_seconds = uri, file, demo, cache_seconds
        self._keys: dict[str, Any] = {}
        self._fetched = 0.0
        self._lock = threading.Lock()

    def key(self, kid: str | None) -> Any:
        """The public key with ``kid`` (refetching a remote set once when the kid is new)."""
        with self._lock:
            if not self._keys or self._stale():
                self._keys = self._load()
            found = self._keys.get(kid or "") or (next(iter(self._keys.values())) if kid is None else None)
            if found is None and self.uri and time.monotonic() - self._fetched > 10:
                # A rotated key: refetch, but at most every ten seconds however many bad kids arrive.
                self._keys = self._load()
                found = self._keys.get(kid or "")
        if found is None:
            raise Unauthenticated("the token was signed with a key the issuer does not publish")
        return found

    def _stale(self) -> bool:
        return self.uri is not None and time.monotonic() - self._fetched > self.cache_seconds

    def _load(self) -> dict[str, Any]:
        if self.demo is not None:
            document = self.demo.jwks()
        elif self.file is not None:
            try:
                document = json.loads(self.file.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ConfigError(f"cannot read JWKS file {self.file}: {exc}") from exc
        else:
            assert self.uri is not None
            try:
                response = requests.get(self.uri, timeout=10)
                response.raise_for_status()
                document = response.json()
            except (requests.RequestException, ValueError) as exc:
                raise Unauthenticated("the token issuer's keys could not be fetched") from exc
            self._fetched = time.monotonic()
        try:
            keys = jwt.PyJWKSet.from_dict(document).keys
        except jwt.PyJWTError as exc:
            raise Unauthenticated("the token issuer publishes no usable keys") from exc
        return {k.key_id or "": k.key for k in keys}


@dataclass(frozen=True, slots=True)
class TrustedIssuer:
    """What the hub accepts from one issuer: its keys, its ``iss`` forms, its audiences, where its roles are."""

    keys: KeySet
    audiences: tuple[str, ...]
    role_claim: str
    team_claim: str
    group_claim: str | None = None
    group_roles: tuple[tuple[str, str], ...] = ()

    def roles(self, claims: dict[str, Any]) -> tuple[str, ...]:
        """The roles ``claims`` give: the role claim's names, then the roles of the groups mapped in config."""
        named = _names(claims.get(self.role_claim), self.role_claim)
        if self.group_claim:
            groups = set(_names(claims.get(self.group_claim), self.group_claim))
            named += tuple(role for group, role in self.group_roles if group in groups and role not in named)
        return named


def _names(value: Any, claim: str) -> tuple[str, ...]:
    """A claim holding names: absent, one string or a list of strings; anything else refuses the token."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(dict.fromkeys(value))
    raise Unauthenticated(f"the bearer token's {claim!r} claim is not a list of names")


# What each PyJWT refusal means to the caller (the library's class names are no business of theirs). The times
# (exp, nbf, iat) are the verifier's to check, on its clock.
_REFUSALS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.InvalidAudienceError, "the bearer token is not meant for this hub (audience)"),
    (jwt.InvalidIssuerError, "the bearer token's issuer is not trusted"),
    (jwt.MissingRequiredClaimError, "the bearer token lacks a required claim"),
    (jwt.InvalidSignatureError, "the bearer token's signature does not verify"),
)


def _seconds(value: object) -> bool:
    """Whether a time claim is a number of seconds since the epoch (a JSON number, not a string or a boolean)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _refusal(exc: jwt.PyJWTError) -> str:
    for kind, message in _REFUSALS:
        if isinstance(exc, kind):
            if isinstance(exc, jwt.MissingRequiredClaimError):
                return f"{message} ({exc.claim})"
            return message
    return "the bearer token was refused"


class TokenVerifier:
    """Checks bearer tokens against the trusted issuers, their audiences and the clock.

    ``clock`` (seconds since the epoch, :func:`time.time` by default) decides when a
    token is valid (``nbf``, ``iat``) and when it has expired (``exp``), whether freshly
    verified or remembered, each with ``auth.clock_skew_seconds`` of leeway; tests step
    one instead of sleeping.
    """

    def __init__(self, auth: AuthSettings, demo: DemoIssuer | None,
                 clock: Callable[[], float] = time.time) -> None:
        self.auth = auth
        self.demo = demo
        self.clock = clock
        self.issuers: dict[str, TrustedIssuer] = {}
        for issuer in auth.issuers:
            file = issuer.jwks_file if issuer.jwks_file is None or issuer.jwks_file.is_absolute() else (
                config_dir() / issuer.jwks_file)
            trusted = TrustedIssuer(
                keys=KeySet(uri=issuer.jwks_uri, file=file, cache_seconds=auth.jwks_cache_seconds),
                audiences=tuple(issuer.audiences or [auth.audience]),
                role_claim=issuer.role_claim or auth.role_claim, team_claim=issuer.team_claim or auth.team_claim,
                group_claim=issuer.group_claim, group_roles=tuple(issuer.group_roles.items()))
            for form in (issuer.issuer, *issuer.issuer_forms):
                self.issuers[form] = trusted
        if demo is not None:
            self.issuers[demo.issuer] = TrustedIssuer(KeySet(demo=demo), (demo.audience,), "roles", "team")
        self._verified: dict[str, tuple[TokenClaims, float]] = {}
        self._verified_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenVerifier:
        """The verifier the settings describe (with the demo issuer when it is on)."""
        return cls(settings.auth, demo_issuer(settings))

    def verify(self, token: str) -> TokenClaims:
        """The claims of a valid token; Unauthenticated for anything else.

        A token whose signature and claims checked out is remembered (by its exact
        text) until it expires, or for ``jwks_cache_seconds`` at most, so a client
        sending the same token on every call pays for the RSA check and the JSON
        parsing once. A token that failed is never remembered.
        """
        remembered = self.remembered(token)
        if remembered is not None:
            return remembered
        claims = self._verify(token)
        now = self.clock()
        until = min(claims.expires + self.auth.clock_skew_seconds, now + max(self.auth.jwks_cache_seconds, 1))
        with self._verified_lock:
            if len(self._verified) >= VERIFIED_TOKENS_KEPT:
                for stale in [t for t, (_, end) in self._verified.items() if end <= now] or [
                        next(iter(self._verified))]:
                    del self._verified[stale]
            self._verified[token] = (claims, until)
        return claims

    def remembered(self, token: str) -> TokenClaims | None:
        """The claims of a token verified earlier and not yet expired (no key or network needed), else None."""
        cached = self._verified.get(token)
        if cached is None:
            return None
        claims, until = cached
        if self.clock() < until:
            return claims
        with self._verified_lock:
            self._verified.pop(token, None)
        return None

    def _verify(self, token: str) -> TokenClaims:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise Unauthenticated("the bearer token is not a well-formed JWT") from exc
        if header.get("alg") != ALGORITHM:
            raise Unauthenticated(f"tokens must be signed {ALGORITHM}")
        issuer = unverified.get("iss")
        trusted = self.issuers.get(issuer) if isinstance(issuer, str) else None
        if trusted is None:
            raise Unauthenticated("the token's issuer is not trusted")
        key = trusted.keys.key(header.get("kid"))
        try:
            claims = jwt.decode(
                token, key, algorithms=[ALGORITHM], audience=list(trusted.audiences), issuer=issuer,
                options={"require": ["exp", "iat", "sub", "aud", "iss"],
                         # the times are checked below, on the verifier's clock (PyJWT reads the system's)
                         "verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.PyJWTError as exc:
            raise Unauthenticated(_refusal(exc)) from exc
        except (TypeError, ValueError, OverflowError) as exc:  # a claim of the wrong type PyJWT did not expect
            raise Unauthenticated("the bearer token's claims are malformed") from exc
        team = claims.get(trusted.team_claim)
        if team is not None and not isinstance(team, str):
            raise Unauthenticated(f"the bearer token's {trusted.team_claim!r} claim is not a team code")
        if not isinstance(claims["sub"], str) or not all(_seconds(claims[c]) for c in ("exp", "nbf") if c in claims):
            raise Unauthenticated("the bearer token's claims are malformed")
        if not _seconds(claims["iat"]):
            raise Unauthenticated("the bearer token's issue time is not valid")
        # PyJWT's rules, on the verifier's clock
        now, leeway = self.clock(), self.auth.clock_skew_seconds
        if claims["exp"] <= now - leeway:
            raise Unauthenticated("the bearer token has expired")
        if max(claims["iat"], claims.get("nbf", claims["iat"])) > now + leeway:
            raise Unauthenticated("the bearer token is not valid yet")
        name = claims.get("name")
        return TokenClaims(
            subject=claims["sub"], issuer=str(issuer), roles=trusted.roles(claims), team=team or None,
            name=name if isinstance(name, str) else None, expires=int(claims["exp"]),
        )


def demo_issuer(settings: Settings, clock: Callable[[], float] = time.time) -> DemoIssuer | None:
    """The demo issuer when the settings switch it on (``auth.demo``), issuing on ``clock``; ConfigError beside a
    real tenant."""
    if not settings.auth.demo:
        return None
    if settings.auth.issuers:
        raise ConfigError(
            "the demo issuer is on (auth.demo) beside real issuers ([[auth.issuers]]): its sign-in page hands "
            "anyone a token for anyone; switch auth.demo off")
    return DemoIssuer(settings.auth.demo_issuer, settings.data_dir, settings.auth.audience, clock)


DEMO_WARNING = ("demo sign-in is ON (auth.demo): anyone who reaches this server can sign in as any demo user. "
                "Never with real data.")
