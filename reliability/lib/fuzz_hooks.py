"""Schemathesis hooks of the fuzzing part (reliability/fuzz.ts writes the state file they read).

Who the fuzzer is, per operation (AUTHFLOW_FUZZ_STATE, a JSON file):
- admin operations (/v1/admin/*, /codec/*): the fuzzer's throwaway admin;
- GET /metrics: the stack's METRICS_TOKEN;
- operations that end the session or the account (logout-all, password change, deletion, TOTP
  changes, reactivation, forgetting a device): a throwaway user's session from a pool, the next
  one once the current one has been spent (any 2xx) or refused (401);
- every other authenticated operation: one throwaway user's session.
Their re-authentication fields (`password`, `current_password`) carry the throwaway users' real
password three times in four, so the operations get past re-authentication and do what they do.
Admin operations on /v1/admin/users/{id} never reach an account the fuzzer does not own: a
well-formed id that is not one of its throwaway victims (generated, or taken from a listing by a
stateful link) is replaced by a victim three times in four, else by an id nobody has. The auth provider is schemathesis's own mechanism, so its
`ignored_auth` check still sends the requests without credentials it needs.
"""

import json
import os
import random
import re
import threading

import schemathesis

with open(os.environ["AUTHFLOW_FUZZ_STATE"], encoding="utf-8") as f:
    STATE = json.load(f)

SPENDING = {
    ("DELETE", "/v1/me"),
    ("POST", "/v1/auth/logout-all"),
    ("PUT", "/v1/me/password"),
    ("POST", "/v1/me/mfa/totp"),
    ("POST", "/v1/me/mfa/totp/confirm"),
    ("DELETE", "/v1/me/mfa/totp"),
    ("POST", "/v1/me/reactivate"),
    ("DELETE", "/v1/me/devices/{id}"),
}
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

_lock = threading.Lock()
_pool = list(STATE["spend"])
_current = {}  # (method, path) -> token in use
_rng = random.Random(STATE.get("seed", 0))
VICTIMS = set(STATE["victims"])


def _key(case):
    return (case.operation.method.upper(), case.operation.path)


def _spending_token(key):
    with _lock:
        if key not in _current:
            _current[key] = _pool.pop() if _pool else STATE["user"]
        return _current[key]


def _spent(key, token):
    with _lock:
        if _current.get(key) == token and _pool:
            _current[key] = _pool.pop()


@schemathesis.auth(refresh_interval=None)
class AuthflowAuth:
    def get(self, case, ctx):
        raw = getattr(case.operation.definition, "raw", None) or {}
        if not raw.get("security") and case.operation.path != "/metrics":
            return None  # an operation without credentials (register, login, ...)
        path = case.operation.path
        if path.startswith("/v1/admin/") or path.startswith("/codec/"):
            return STATE["admin"]
        if path == "/metrics":
            return STATE["metrics"]
        if _key(case) in SPENDING:
            return _spending_token(_key(case))
        return STATE["user"]

    def set(self, case, data, ctx):
        if data:
            case.headers = case.headers or {}
            case.headers["Authorization"] = f"Bearer {data}"


@schemathesis.hook
def before_call(context, case, kwargs):
    if _key(case) in SPENDING and isinstance(case.body, dict):
        for field in ("password", "current_password"):
            if field in case.body:
                with _lock:
                    real = _rng.random() < 0.75
                if real:
                    case.body[field] = STATE["password"]
    if case.operation.path.startswith("/v1/admin/users/{id}") and STATE["victims"]:
        current = (case.path_parameters or {}).get("id")
        # None: a stateful link took the id from a field that was null (an audit event of no user).
        if current is None or (isinstance(current, str) and UUID.match(current) and current not in VICTIMS):
            # A well-formed id that is not a victim's (generated, or taken from a listing by a
            # stateful link): a victim three times in four, else an id nobody has (the 404 path).
            # Malformed ids stay, for the 400 path.
            with _lock:
                aim = _rng.random() < 0.75
                victim = _rng.choice(STATE["victims"])
                nobody = "00000000-0000-4000-8000-%012x" % _rng.getrandbits(48)
            case.path_parameters["id"] = victim if aim else nobody


@schemathesis.hook
def after_call(context, case, response):
    key = _key(case)
    if key not in SPENDING or case.method.upper() != key[0]:
        return
    header = (case.headers or {}).get("Authorization", "")
    token = header[len("Bearer "):] if header.startswith("Bearer ") else None
    if token and (response.status_code == 401 or 200 <= response.status_code < 300):
        _spent(key, token)
