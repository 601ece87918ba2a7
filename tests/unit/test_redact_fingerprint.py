"""Secrets never leave a line unmasked; variable parts never split one fault in two."""

import pytest

from controller.detect.fingerprint import fingerprint, normalize
from controller.detect.redact import redact


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("login failed password=hunter2 user=bob", "hunter2"),
        ('{"user": "bob", "password": "hunter2"}', "hunter2"),
        ("DATABASE_URL=postgresql://app:s3cr3t@db:5432/app", "s3cr3t"),
        ("redis://:r3dispass@cache:6379/0 refused", "r3dispass"),
        ("GET /api Authorization: Bearer abcdef0123456789xyz", "abcdef0123456789xyz"),
        ("token: ghp_0123456789abcdefghijABCDEFGHIJ012345", "ghp_0123456789abcdefghij"),
        ("aws key AKIAIOSFODNN7EXAMPLE in env", "AKIAIOSFODNN7EXAMPLE"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlMTIz rejected", "c2lnbmF0dXJl"),
        ("client_secret='abc123def456' invalid_client", "abc123def456"),
        ("api_key: sk_live_0123456789abcdefghij", "sk_live_0123456789abcdefghij"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", "MIIEow"),
    ],
)
def test_secrets_are_masked(line, secret):
    masked = redact(line)
    assert secret not in masked
    assert "***" in masked


def test_lines_without_secrets_are_left_alone():
    line = 'connection to server at "127.0.0.1", port 5432 failed: Connection refused'
    assert redact(line) == line


def test_numbers_ids_addresses_and_times_do_not_split_an_issue():
    a = "2026-11-28T04:36:38.1Z request 4f1c2a9e-1111-2222-3333-444455556666 to 10.0.0.7:5432 took 12 ms (0xdeadbeef)"
    b = "2026-11-29T01:02:03.9Z request 9a8b7c6d-aaaa-bbbb-cccc-ddddeeeeffff to 10.0.0.9:6432 took 980 ms (0x1234abcd)"
    assert normalize(a) == normalize(b)
    assert fingerprint("db", "p", a) == fingerprint("db", "p", b)


def test_different_names_are_different_issues():
    assert fingerprint("db", "p", 'database "app" does not exist') != fingerprint(
        "db", "p", 'database "billing" does not exist'
    )
    assert fingerprint("db", "p", "x") != fingerprint("web", "p", "x")
