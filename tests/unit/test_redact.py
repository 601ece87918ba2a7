"""The redaction engine: every known shape of secret is masked, ordinary errors are not.

The first tests are the shapes the landed code leaked or over-masked (issue 12, item 1);
the property-based tests then generate secrets in every shape the engine knows (key
prefixes and suffixes, quoting, URLs whose passwords hold ``@ / : %``, JSON, headers,
flags) and check that no piece of the secret survives, that redacting is idempotent, and
that ordinary error lines come out exactly as they went in.
"""

from __future__ import annotations

import itertools
import json
import string

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from controller.detect.redact import MASK, overlaps, redact, secret_spans

LEAKED_BEFORE = [
    ("DB_PASSWORD=Sup3rLeak1 connecting to db", "Sup3rLeak1"),
    ("PGPASSWORD=Pg5ecretLeak psql -h db", "Pg5ecretLeak"),
    ("SECRET_TOKEN=tok3nLeak2 loaded from env", "tok3nLeak2"),
    ("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
    ("could not connect: postgres://app:p@ssLeak3@db/app", "ssLeak3"),
    ("could not connect: postgres://app:p@ss/x@db/app", "p@ss/x"),
    ("Error 111 connecting to redis://default:Pa/ssLeak4@cache:6379", "ssLeak4"),
    ('auth failed: password="correct horse battery staple"', "horse battery staple"),
    ("GET /api 401 Cookie: session=c00kieLeak5; theme=dark", "c00kieLeak5"),
    ("GET /api 403 X-Api-Key: k3yLeak6", "k3yLeak6"),
    (
        "GET /api 401 Authorization: Digest username=bob, response=6629fae49393a05397450978507c4ef1",
        "6629fae4",
    ),
    ('{"level": "error", "client_secret": "s3cr3t value 7"}', "s3cr3t value 7"),
    ('"{\\"password\\": \\"nested Leak8\\"}"', "nested Leak8"),
    ("mysql --password Leak9pw -u root", "Leak9pw"),
]


@pytest.mark.parametrize(("line", "secret"), LEAKED_BEFORE)
def test_secrets_in_the_shapes_that_leaked_are_masked(line, secret):
    masked = redact(line)
    assert secret not in masked, masked
    assert MASK in masked


# Ordinary error lines as real software prints them: none holds a secret, none may change.
ORDINARY = [
    "token signature is invalid",
    "invalid token: signature has expired",
    "JsonWebTokenError: invalid signature",
    "TokenExpiredError: jwt expired",
    "failed to refresh access token: 401",
    "OAuth error: invalid_grant (refresh token revoked)",
    "Authentication token is missing",
    "bearer token expired",
    "Basic authentication failed for user bob",
    "nginx: 401 Authorization Required",
    'WWW-Authenticate: Bearer realm="api", error="invalid_token"',
    'FATAL:  password authentication failed for user "app"',
    "ERROR 1045 (28000): Access denied for user 'app'@'10.0.0.7' (using password: NO)",
    "Access denied for user 'root'@'localhost' (using password: YES)",
    "AUTH failed: WRONGPASS invalid username-password pair or user is disabled.",
    "NOAUTH Authentication required.",
    "password must be at least 8 characters",
    "reset password link sent to user 42",
    "secret rotation completed in 3 s",
    "client_secret is required",
    "ValueError: SECRET_KEY must not be empty",
    "Missing required environment variable: DB_PASSWORD",
    "KeyError: 'password'",
    "using api key from environment",
    'ERROR:  duplicate key value violates unique constraint "users_email_key"',
    "DETAIL:  Key (email)=(bob@example.com) already exists.",
    'connection to server at "127.0.0.1", port 5432 failed: Connection refused',
    "could not connect to postgres://db:5432/app: connection refused",
    "redis.exceptions.ConnectionError: Error 111 connecting to cache:6379. Connection refused.",
    "GET https://api.example.com/v1/users?page=2&sort=name returned 500",
    "upstream timed out (110: Connection timed out) while reading response header from upstream",
    "x509: certificate signed by unknown authority",
    "panic: runtime error: invalid memory address or nil pointer dereference",
    "java.lang.IllegalStateException: token store unavailable",
    'level=error msg="token verification failed" user=bob',
    "WARN  session expired for user=bob after 30m",
    "PWD=/app OLDPWD=/ SHLVL=1 HOME=/root",
    "bypass=true compass=north",
    'sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) FATAL:  database "orders" does not exist',
    "Traceback (most recent call last):",
    '  File "/app/main.py", line 12, in <module>',
    "ModuleNotFoundError: No module named 'requests'",
    "kafka: client has run out of available brokers to talk to",
    "token: expired",
    "password: required",
]


@pytest.mark.parametrize("line", ORDINARY)
def test_ordinary_error_lines_are_left_exactly_as_they_are(line):
    assert redact(line) == line


def test_spans_say_where_the_secrets_are():
    line = "login app password=hunter2 from postgres://app:pw@db"
    spans = secret_spans(line)
    assert [line[s:e] for s, e in spans] == ["hunter2", "pw"]
    assert overlaps((line.index("hunter2"), line.index("hunter2") + 3), spans)
    assert not overlaps((0, 5), spans)


def test_a_private_key_block_is_masked_between_its_header_and_footer():
    block = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI\nAoGCCqGSM\n-----END EC PRIVATE KEY-----"
    assert redact(block) == "-----BEGIN EC PRIVATE KEY-----***-----END EC PRIVATE KEY-----"
    assert redact("-----BEGIN PRIVATE KEY-----\nMIIEvQ cut here") == (
        "-----BEGIN PRIVATE KEY-----***"
    )


# --- generated secrets in every known shape ---------------------------------------------

_NO_SPACE = string.ascii_letters + string.digits + "!#$%^()_+-=.,~@/:;[]{}|?<>"
_URL_PASSWORD = string.ascii_letters + string.digits + "@/:%!$()*+,;=-._~"
_PRINTABLE = string.ascii_letters + string.digits + string.punctuation + " "


def _secret(alphabet: str) -> st.SearchStrategy[str]:
    # at least 8 characters with a digit: something no ordinary line holds by chance
    return st.text(alphabet, min_size=8, max_size=40).filter(
        lambda s: any(c.isdigit() for c in s) and MASK not in s
    )


def _assert_hidden(line: str, secret: str) -> None:
    out = redact(line)
    assert secret not in out, (line, out)
    rest = line.replace(secret, "\0")
    for i in range(len(secret) - 5):  # no 6-character piece of it either
        piece = secret[i : i + 6]
        assert piece not in out or piece in rest, (line, out, piece)
    assert redact(out) == out


_PREFIXES = ["", "DB_", "PG", "APP_", "SECRET_", "aws_secret_", "x-", "My.App.", "db.", "mysql_"]
_WORDS = [
    "PASSWORD", "password", "Passwd", "passphrase", "SECRET", "secret", "TOKEN", "token",
    "api_key", "API-KEY", "ApiKey", "access_key", "secret_key", "private_key", "client_secret",
    "credentials", "session_id", "SESSIONID", "signature", "auth_token", "refresh_token",
]  # fmt: skip
_SEPARATED = ["pass", "pwd"]  # only after a separator: DB_PASS, redis_pwd


@st.composite
def keyed_lines(draw: st.DrawFn) -> tuple[str, str]:
    prefix = draw(st.sampled_from(_PREFIXES))
    word = draw(st.sampled_from(_WORDS + (_SEPARATED if prefix[-1:] in "_.-" and prefix else [])))
    key = prefix + word + draw(st.sampled_from(["", "", "2", "_NEW"]))
    quoting = draw(st.sampled_from(["bare", "double", "single"]))
    secret = draw(_secret(_NO_SPACE if quoting == "bare" else _PRINTABLE))
    if quoting == "double":
        value = '"' + secret.replace("\\", "\\\\").replace('"', '\\"') + '"'
    elif quoting == "single":
        value = "'" + secret.replace("\\", "\\\\").replace("'", "\\'") + "'"
    else:
        value = secret
    shape = draw(st.sampled_from(["env", "colon", "yaml", "json", "query", "sentence"]))
    if shape == "json":
        secret = draw(_secret(_PRINTABLE))
        line = json.dumps({"level": "error", key: secret, "n": 1})
        return line, secret
    if shape == "query":
        secret = draw(_secret(string.ascii_letters + string.digits + "-._~%"))
        return f"GET /cb?code=1&{key}={secret}&state=x HTTP/1.1", secret
    sep = {"env": "=", "colon": ": ", "yaml": ": ", "sentence": ": "}[shape]
    if shape == "env":
        sep = draw(st.sampled_from(["=", " = ", ":=", " => "]))
    before = {
        "env": draw(st.sampled_from(["", "ERROR ", "2026-12-02T10:00:00Z WARN login failed "])),
        "colon": draw(st.sampled_from(["{", "config: {", "ERROR: ", "(", "x=1, "])),
        "yaml": draw(st.sampled_from(["", "  ", "  - "])),
        "sentence": draw(st.sampled_from(["ERROR login failed ", "WARN rejected "])),
    }[shape]
    after = draw(st.sampled_from(["", " retrying", ", user=bob"])) if shape != "yaml" else ""
    return f"{before}{key}{sep}{value}{after}", secret


@st.composite
def url_lines(draw: st.DrawFn) -> tuple[str, str]:
    scheme = draw(st.sampled_from(["postgres", "postgresql", "redis", "mysql", "amqp", "https"]))
    user = draw(st.sampled_from(["app", "default", "", "u%40x", "svc.account"]))
    secret = draw(_secret(_URL_PASSWORD))
    host = draw(st.sampled_from(["db", "cache:6379", "10.0.0.7:5432", "db.internal", "[::1]:5432"]))
    path = draw(st.sampled_from(["", "/app", "/0", "/app?sslmode=disable"]))
    url = f"{scheme}://{user}:{secret}@{host}{path}"
    context = draw(
        st.sampled_from(["connecting to {} failed", "DATABASE_URL={}", 'dsn="{}"', "{}"])
    )
    return context.format(url), secret


@st.composite
def header_lines(draw: st.DrawFn) -> tuple[str, str]:
    secret = draw(_secret(_NO_SPACE))
    shape = draw(
        st.sampled_from(
            [
                "Authorization: Bearer {}",
                "Authorization: Basic {}",
                "authorization: token {}",
                "Proxy-Authorization: {}",
                "Cookie: session={}; theme=dark",
                "Set-Cookie: sid={}; Path=/; HttpOnly",
                "X-Api-Key: {}",
                "X-Auth-Token: {}",
                "headers={{'Authorization': 'Bearer {}', 'Accept': '*/*'}}",
            ]
        )
    )
    if "'" in shape:
        secret = secret.replace("'", "")
    context = draw(st.sampled_from(["", "GET /api 401 ", "request headers: "]))
    return context + shape.format(secret), secret


@st.composite
def flag_lines(draw: st.DrawFn) -> tuple[str, str]:
    secret = draw(_secret(_NO_SPACE))
    flag = draw(st.sampled_from(["--password", "--db-password", "--api-key", "--token"]))
    joiner = draw(st.sampled_from([" ", "="]))
    return f"running tool {flag}{joiner}{secret} --verbose", secret


SHAPES = st.one_of(keyed_lines(), url_lines(), header_lines(), flag_lines())


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(SHAPES)
def test_a_generated_secret_never_survives_redaction(case):
    line, secret = case
    _assert_hidden(line, secret)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(st.lists(SHAPES, min_size=2, max_size=4))
def test_several_secrets_on_one_record_are_all_masked(cases):
    text = "\n".join(line for line, _ in cases)
    out = redact(text)
    for _, secret in cases:
        assert secret not in out


_SOUP = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "password", "DB_", "TOKEN", "=", ":", " ", "\t", '"', "'", "\\", "@", "://",
                "postgres", "Bearer ", "Authorization", "Cookie", "abc123", "\n", "{", "}",
                ",", "-", "--password ", "eyJhbGciOi", ".", "&", "?", MASK, "-----BEGIN ",
                "PRIVATE KEY-----", "-----END ",
            ]
        ),
        st.text(max_size=6),
    ),
    max_size=30,
).map("".join)  # fmt: skip


@settings(max_examples=1000, deadline=None)
@given(_SOUP)
@example("password:password: password")  # masking the last word made the first a key
@example("token password:password:.")
def test_redaction_never_raises_and_redacting_twice_changes_nothing(text):
    spans = secret_spans(text)
    assert all(0 <= s < e <= len(text) for s, e in spans)
    assert all(a[1] < b[0] for a, b in itertools.pairwise(spans))
    once = redact(text)
    assert redact(once) == once


_PROSE_WORDS = [
    "token", "password", "secret", "key", "api", "auth", "session", "cookie", "bearer",
    "basic", "signature", "credentials", "invalid", "expired", "missing", "failed", "for",
    "user", "the", "is", "not", "valid", "has", "been", "revoked", "connection", "refused",
    "database", "error", "could", "verify", "login", "rejected", "access", "denied",
]  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.sampled_from(_PROSE_WORDS), min_size=1, max_size=12),
    st.lists(st.sampled_from([" ", " ", " ", ": ", ", ", ". "]), min_size=12, max_size=12),
)
def test_sentences_about_tokens_and_passwords_are_never_masked(words, joints):
    # a colon only ever follows a word and is followed by a sentence that goes on
    text = words[0]
    for word, joint in zip(words[1:], joints, strict=False):
        text += joint + word
    text += " for user bob"
    assert redact(text) == text


def test_a_mask_already_in_the_text_never_shields_a_secret_before_it():
    assert redact("password: letmein ***") == "password: ***"
    assert redact("token: abcdefgh ***more") == "token: ***"
