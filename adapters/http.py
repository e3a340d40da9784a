"""The REST adapters' HTTP client: auth, retries with backoff, and the one place requests' errors become hub errors.

:class:`HttpClient` sends one request at a time to one base URL. 429 and 503 (and
connection failures) are waited out - ``Retry-After`` when the server gives one,
else exponential backoff - up to ``retries`` times, then raised as
:class:`~hub.errors.RetryableError`; any other 5xx is retryable at once; any other
4xx is :class:`RestRefused` (a permanent answer: fix the request or the record).

Auth is one of ``none``, ``bearer`` (a fixed token) or ``oauth2`` (client
credentials: a token fetched from ``token_url`` and fetched again when it expires
or a request answers 401).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import requests

from hub.errors import ConfigError, HubError, RetryableError, SourceUnavailable

AuthKind = Literal["none", "bearer", "oauth2"]


class RestRefused(HubError):
    """A REST server refused a request for good (a 4xx other than 429)."""

    code = "CAREHUB-E330"

    def __init__(self, message: str, *, status: int, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


@dataclass(slots=True)
class Auth:
    """How requests authenticate: nothing, a bearer token, or OAuth2 client credentials."""

    kind: AuthKind = "none"
    token: str | None = None
    token_url: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    scope: str | None = None
    _expires: float = field(default=0.0, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_options(cls, options: dict[str, Any], owner: str) -> Auth:
        """Read ``auth`` and its keys from adapter options; secrets may name an environment variable
        (``client_secret_env``, ``token_env``) so none is written in a config file."""
        kind = str(options.get("auth", "none"))
        if kind not in ("none", "bearer", "oauth2"):
            raise ConfigError(f"{owner}: options.auth is none, bearer or oauth2, not {kind!r}")
        token = _secret(options, "token")
        secret = _secret(options, "client_secret")
        auth = cls(kind=kind, token=token, token_url=options.get("token_url"),  # type: ignore[arg-type]
                   client_id=options.get("client_id"), client_secret=secret, scope=options.get("scope"))
        if kind == "bearer" and not token:
            raise ConfigError(f"{owner}: bearer auth needs options.token or options.token_env")
        if kind == "oauth2" and not (auth.token_url and auth.client_id and secret):
            raise ConfigError(f"{owner}: oauth2 auth needs options.token_url, client_id and client_secret(_env)")
        if kind == "oauth2":
            auth.token = None
        return auth

    def header(self, session: requests.Session, timeout: float, *, renew: bool = False) -> dict[str, str]:
        """The Authorization header for the next request (fetching an OAuth2 token when due)."""
        if self.kind == "none":
            return {}
        if self.kind == "oauth2":
            with self._lock:
                if renew or self.token is None or time.monotonic() >= self._expires:
                    self._fetch(session, timeout)
        return {"Authorization": f"Bearer {self.token}"}

    def _fetch(self, session: requests.Session, timeout: float) -> None:
        data = {"grant_type": "client_credentials"}
        if self.scope:
            data["scope"] = self.scope
        try:
            response = session.post(str(self.token_url), data=data, auth=(str(self.client_id),
                                    str(self.client_secret)), timeout=timeout)
        except requests.RequestException as exc:
            raise SourceUnavailable(f"token endpoint unreachable: {type(exc).__name__}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryableError(f"token endpoint answered {response.status_code}")
        if response.status_code >= 400:
            raise ConfigError(f"token endpoint refused the client credentials ({response.status_code})")
        try:
            body = response.json()
            self.token = str(body["access_token"])
        except (ValueError, KeyError) as exc:
            raise ConfigError("token endpoint answered without an access_token") from exc
        # renew a little before the server says it expires
        self._expires = time.monotonic() + max(float(body.get("expires_in", 300)) - 30, 1)


def _secret(options: dict[str, Any], key: str) -> str | None:
    if options.get(key):
        return str(options[key])
    env = options.get(f"{key}_env")
    if env:
        value = os.environ.get(str(env))
        if not value:
            raise ConfigError(f"environment variable {env} (options.{key}_env) is not set")
        return value
    return None


class HttpClient:
    """Requests to one REST server, with auth and retries; see the module."""

    def __init__(self, base_url: str, auth: Auth, *, timeout: float = 30.0, retries: int = 5,
                 backoff: float = 0.5, max_wait: float = 30.0, headers: dict[str, str] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.timeout, self.retries, self.backoff, self.max_wait = timeout, retries, backoff, max_wait
        self.session = requests.Session()
        self.session.headers.update({"Accept": "application/json", **(headers or {})})
        self.retried = 0  # waits taken, for the conformance suite and operators' logs

    @classmethod
    def from_options(cls, options: dict[str, Any], owner: str) -> HttpClient:
        """A client from adapter options: base_url, auth keys, timeout_seconds, retries, backoff_seconds."""
        base = options.get("base_url")
        if not base:
            raise ConfigError(f"{owner}: options.base_url is required")
        return cls(str(base), Auth.from_options(options, owner),
                   timeout=float(options.get("timeout_seconds", 30)), retries=int(options.get("retries", 5)),
                   backoff=float(options.get("backoff_seconds", 0.5)),
                   max_wait=float(options.get("max_wait_seconds", 30)),
                   headers={str(k): str(v) for k, v in options.get("headers", {}).items()})

    def url(self, path: str) -> str:
        """An absolute URL for a path (or the URL itself when it already is one: a ``next`` link)."""
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}/{path.lstrip('/')}"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One request, retried on 429/503 and connection failures; see the module for what is raised."""
        target = self.url(path)
        headers = dict(kwargs.pop("headers", None) or {})
        renewed = False
        attempt = 0
        while True:
            try:
                response = self.session.request(
                    method, target, timeout=self.timeout,
                    headers={**headers, **self.auth.header(self.session, self.timeout)}, **kwargs)
            except requests.RequestException as exc:
                if attempt >= self.retries:
                    raise SourceUnavailable(f"{self.base_url} unreachable: {type(exc).__name__}") from exc
                self._wait(attempt, None)
                attempt += 1
                continue
            status = response.status_code
            if status == 401 and self.auth.kind == "oauth2" and not renewed:
                renewed = True  # the token may have been revoked early: fetch one more
                self.auth.header(self.session, self.timeout, renew=True)
                continue
            if status in (429, 503):
                if attempt >= self.retries:
                    raise RetryableError(f"{self.base_url} still answers {status} after {attempt} retries")
                self._wait(attempt, response.headers.get("Retry-After"))
                attempt += 1
                continue
            if status >= 500:
                raise RetryableError(f"{self.base_url} answered {status} to {method} {target.split('?')[0]}")
            if status >= 400:
                body = _json_or_none(response)
                raise RestRefused(f"{self.base_url} refused {method} {target.split('?')[0]}: {status} "
                                  f"{_reason(body)}", status=status, body=body)
            return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """A request's JSON body (RetryableError when a 2xx carries none)."""
        response = self.request(method, path, **kwargs)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise RetryableError(f"{self.base_url} answered {response.status_code} without JSON") from exc

    def _wait(self, attempt: int, retry_after: str | None) -> None:
        self.retried += 1
        delay = self.backoff * (2 ** attempt)
        if retry_after and retry_after.strip().isdigit():
            delay = float(retry_after)
        time.sleep(min(delay, self.max_wait))

    def after_fork(self) -> None:
        """In a forked reader: connections and the token lock of our own (the parent's stay the parent's)."""
        headers = dict(self.session.headers)
        self.session = requests.Session()
        self.session.headers.update(headers)
        self.auth._lock = threading.Lock()

    def close(self) -> None:
        """Close pooled connections."""
        self.session.close()


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _reason(body: Any) -> str:
    if isinstance(body, dict):
        for key in ("reason", "error", "detail", "message", "title"):
            if body.get(key):
                return str(body[key])[:200]
    return ""
