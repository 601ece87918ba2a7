"""The shapes of issue 20 (a hostile probe's: 53 shapes, 4 leaked) and more of our own.

The probe found a Slack webhook URL, whose path is the secret, and a password glued to
its flag (``mysql -uroot -pS3cret``) in every output. Each family below generates secrets
in one shape (webhooks of Slack, Discord, Teams and the generic ``/hooks/`` paths; glued
and separate flags of the tools that take passwords; the token formats of cloud
providers and services; the connection strings of every database the pattern library
knows: PostgreSQL, MySQL, MariaDB, MongoDB, Redis and SQLite) and checks that no
6-character piece of the secret survives redaction, in any of the contexts a log, an
error or an argv puts it. Lines that look alike but hold no secret stay as they are.
"""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.detect.redact import MASK, redact
from tests.unit.test_redact import _assert_hidden, _secret

ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"
B64URL = ALNUM + "-_"
_PASSWORD = ALNUM + "!#$%^*_+=.~"  # no quote, comma, bracket, space: a bare argv word


def exactly(alphabet: str, size: int) -> st.SearchStrategy[str]:
    return st.text(alphabet, min_size=size, max_size=size)


def between(alphabet: str, low: int, high: int) -> st.SearchStrategy[str]:
    return st.text(alphabet, min_size=low, max_size=high)


def with_digit(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return strategy.filter(lambda s: any(c.isdigit() for c in s) and MASK not in s)


CONTEXTS = [
    "{}",
    "ERROR request failed: {}",
    "2026-12-02T10:00:00Z WARN retrying {} in 5 s",
    '{{"level": "error", "msg": "call failed", "target": "{}"}}',
    "subprocess.CalledProcessError: Command '{}' returned non-zero exit status 1.",
    "   {}",
]


def in_context(
    secret_line: st.SearchStrategy[tuple[str, str]],
) -> st.SearchStrategy[tuple[str, str]]:
    return st.tuples(secret_line, st.sampled_from(CONTEXTS)).map(
        lambda pair: (pair[1].format(pair[0][0]), pair[0][1])
    )


# --- the probe's shapes: webhooks whose path is the secret ---------------------------------


@st.composite
def webhook_urls(draw: st.DrawFn) -> tuple[str, str]:
    kind = draw(st.sampled_from(["slack", "discord", "teams", "hooks", "webhook", "zapier"]))
    if kind == "slack":
        secret = draw(with_digit(exactly(ALNUM, 24)))
        what = draw(st.sampled_from(["services", "workflows", "triggers"]))
        team, bot = draw(exactly(ALNUM.upper(), 9)), draw(exactly(ALNUM.upper(), 9))
        return f"https://hooks.slack.com/{what}/T{team}/B{bot}/{secret}", secret
    if kind == "discord":
        secret = draw(with_digit(exactly(B64URL, 68)))
        host = draw(st.sampled_from(["discord.com", "discordapp.com", "ptb.discord.com"]))
        version = draw(st.sampled_from(["", "/v10"]))
        hook_id = draw(exactly(string.digits, 18))
        return f"https://{host}/api{version}/webhooks/{hook_id}/{secret}", secret
    if kind == "teams":
        secret = draw(with_digit(exactly(HEX, 32)))
        guid = "8f7b6a2e-1c3d-4e5f-9a8b-7c6d5e4f3a2b"
        return (
            f"https://contoso.webhook.office.com/webhookb2/{guid}@{guid}"
            f"/IncomingWebhook/{secret}/{guid}/V2abc",
            secret,
        )
    secret = draw(with_digit(between(B64URL, 12, 40)))
    host = draw(st.sampled_from(["chat.example.com", "127.0.0.1:8065", "n8n:5678", "ha.local"]))
    path = {"hooks": "/hooks/", "webhook": "/api/webhook/", "zapier": "/hooks/catch/123/"}.get(
        kind, "/webhook/"
    )
    return f"https://{host}{path}{secret}", secret


@st.composite
def glued_flags(draw: st.DrawFn) -> tuple[str, str]:
    secret = draw(_secret(_PASSWORD))
    shape = draw(
        st.sampled_from(
            [
                "mysql -uroot -p{}",
                "mysql -h db -P 3306 -u app -p{} app",
                "/usr/bin/mysqldump --single-transaction -uapp -p{} app",
                "mariadb -uroot -p{} -e 'select 1'",
                "mysqladmin -u root -p{} ping",
                "['mysql', '-uroot', '-p{}', '-e', 'select 1']",
                "mysql -uroot -p'{}'",
                "tool --password={} --verbose",
                "tool --db-password={}",
                "sqlcmd -S db -U sa -P{} -Q 'select 1'",
                "sqlcmd -S db -U sa -P {}",
                "bcp app.dbo.t out t.dat -S db -U sa -P{}",
                "sshpass -p{} ssh app@db",
                "sshpass -p {} ssh app@db",
                "['sshpass', '-p', '{}', 'ssh', 'db']",
                "exec: mysql -uroot -p{}; echo done",
            ]
        )
    )
    return shape.format(secret), secret


# --- more of our own: tools, cloud keys, tokens, DSNs ----------------------------------


@st.composite
def tool_secrets(draw: st.DrawFn) -> tuple[str, str]:
    secret = draw(_secret(_PASSWORD))
    shape = draw(
        st.sampled_from(
            [
                "redis-cli -h cache -a {} ping",
                "REDISCLI_AUTH={} redis-cli ping",
                "mongosh --host db -u admin -p {} --authenticationDatabase admin",
                "mongodump -u admin -p{} --out /backup",
                "docker login -u bob -p {} registry.example.com",
                "curl -fsS -u bob:{} https://api.example.com/",
                "smbclient //fs/share -U bob%{}",
                "openssl pkcs12 -export -passout pass:{} -in cert.pem",
                "keytool -importkeystore -srcstorepass {} -deststorepass changeit2",
                "redis-server --requirepass {}",
                "redis-server --masterauth {} --replicaof db 6379",
                "machine registry.example.com login bob password {}",
                "sqlplus scott/{}@//db:1521/ORCLPDB1",
                "sqlplus -s scott/{}@orcl @report.sql",
                "PRAGMA key = '{}';",
                'sqlcipher: PRAGMA rekey="{}"',
            ]
        )
    )
    return shape.format(secret), secret


TOKEN_FORMATS: dict[str, st.SearchStrategy[str]] = {
    "jwt": st.tuples(between(B64URL, 10, 40), between(B64URL, 10, 60), between(B64URL, 20, 43)).map(
        lambda p: f"eyJ{p[0]}.eyJ{p[1]}.{p[2]}"
    ),
    "aws access key id": exactly(string.ascii_uppercase + string.digits, 16).map("AKIA".__add__),
    "google api key": exactly(B64URL, 35).map("AIza".__add__),
    "google oauth token": between(B64URL, 30, 60).map("ya29.".__add__),
    "alibaba access key": exactly(ALNUM, 20).map("LTAI".__add__),
    "digitalocean": exactly(HEX, 64).map("dop_v1_".__add__),
    "openai": between(ALNUM, 40, 60).map("sk-proj-".__add__),
    "anthropic": between(B64URL, 80, 95).map("sk-ant-api03-".__add__),
    "hugging face": exactly(ALNUM, 34).map("hf_".__add__),
    "sendgrid": st.tuples(exactly(B64URL, 22), exactly(B64URL, 43)).map(
        lambda p: f"SG.{p[0]}.{p[1]}"
    ),
    "mailgun": exactly(HEX, 32).map("key-".__add__),
    "shopify": exactly(HEX, 32).map("shpat_".__add__),
    "pypi": between(B64URL, 60, 120).map("pypi-AgEIcHlwaS5vcmc".__add__),
    "docker hub": between(B64URL, 27, 36).map("dckr_pat_".__add__),
    "vault": between(B64URL, 24, 90).map("hvs.".__add__),
    "grafana": st.tuples(exactly(ALNUM, 32), exactly(HEX, 8)).map(lambda p: f"glsa_{p[0]}_{p[1]}"),
    "atlassian": between(B64URL, 100, 180).map("ATATT3x".__add__),
    "databricks": exactly(HEX, 32).map("dapi".__add__),
    "telegram bot": st.tuples(exactly(string.digits, 10), exactly(B64URL, 33)).map(
        lambda p: f"{p[0]}:AA{p[1]}"
    ),
    "stripe webhook": between(ALNUM, 32, 40).map("whsec_".__add__),
    "new relic": exactly(string.ascii_uppercase + string.digits, 27).map("NRAK-".__add__),
    "age": exactly(string.ascii_uppercase + string.digits, 58).map("AGE-SECRET-KEY-1".__add__),
    "github": exactly(ALNUM, 36).map("ghp_".__add__),
    "slack bot": between(ALNUM + "-", 30, 50).map("xoxb-".__add__),
}


@st.composite
def tokens(draw: st.DrawFn) -> tuple[str, str]:
    name = draw(st.sampled_from(sorted(TOKEN_FORMATS)))
    token = draw(TOKEN_FORMATS[name])
    shape = draw(st.sampled_from(["{}", "using {} for the upload", "id={}", "'{}'"]))
    return shape.format(token), token


@st.composite
def cloud_secrets(draw: st.DrawFn) -> tuple[str, str]:
    secret = draw(with_digit(between(ALNUM + "+/", 40, 88)))
    shape = draw(
        st.sampled_from(
            [
                "DefaultEndpointsProtocol=https;AccountName=app;AccountKey={}==;EndpointSuffix=core.windows.net",
                "Endpoint=sb://bus.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey={}=",
                "AWS_SESSION_TOKEN={}",
                "aws_secret_access_key = {}",
                '{{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\\n{}\\n-----END PRIVATE KEY-----\\n"}}',
                '{{"auths": {{"registry.example.com": {{"auth": "{}"}}}}}}',
            ]
        )
    )
    return shape.format(secret), secret


@st.composite
def sas_and_apprise_parameters(draw: st.DrawFn) -> tuple[str, str]:
    secret = draw(with_digit(between(ALNUM + "%-._~", 12, 44)))
    shape = draw(
        st.sampled_from(
            [
                "GET https://acct.blob.core.windows.net/c/b?sv=2022-11-02&se=2026&sp=r&sig={} 403",
                "json://hooks.example.com/notify?+X-Auth={}",
                "json://hooks.example.com/notify?format=text&-apikey={}",
                "form://127.0.0.1:8000/?:token={}&overflow=split",
                "json://user@host/?%2BAuthorization={}",
            ]
        )
    )
    return shape.format(secret), secret


@st.composite
def database_dsns(draw: st.DrawFn) -> tuple[str, str]:
    secret = draw(_secret(ALNUM + "!$*+-._~"))
    shape = draw(
        st.sampled_from(
            [
                # PostgreSQL
                "postgresql+psycopg2://app:{}@db:5432/app",
                "postgres://app:{}@db/app?sslmode=require",
                "jdbc:postgresql://db:5432/app?user=app&password={}",
                "host=db port=5432 user=app password={} dbname=app",
                "Host=db;Username=app;Password={};Database=app",
                # MySQL and MariaDB
                "mysql+pymysql://app:{}@db:3306/app",
                "mariadb://root:{}@db/app",
                "app:{}@tcp(db:3306)/app?parseTime=true",
                "jdbc:mysql://db:3306/app?user=app&password={}&useSSL=false",
                # MongoDB
                "mongodb://admin:{}@mongo:27017/app?authSource=admin",
                "mongodb+srv://app:{}@cluster0.ab1cd.mongodb.net/app",
                # Redis
                "redis://:{}@cache:6379/0",
                "rediss://default:{}@cache.example.com:6380",
                # SQLite (SQLCipher's key)
                "sqlite+pysqlcipher://:{}@/data/app.db",
                # SQL Server, Oracle, RabbitMQ, Kafka
                "jdbc:sqlserver://db:1433;databaseName=app;user=sa;password={};",
                "Server=db;Database=app;User Id=sa;Password={};",
                "scott/{}@//db.example.com:1521/ORCLPDB1",
                "amqp://guest:{}@rabbit:5672/",
                'sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="app" password="{}";',
            ]
        )
    )
    return shape.format(secret), secret


@st.composite
def sentry_dsns(draw: st.DrawFn) -> tuple[str, str]:
    key = draw(with_digit(exactly(HEX, 32)))
    return f"SENTRY_DSN=https://{key}@o12345.ingest.sentry.io/678", key


FAMILIES = {
    "webhook urls (probe)": webhook_urls(),
    "glued flags (probe)": glued_flags(),
    "tool command lines": tool_secrets(),
    "token formats": tokens(),
    "cloud keys": cloud_secrets(),
    "secret url parameters": sas_and_apprise_parameters(),
    "database dsns": database_dsns(),
    "sentry dsn": sentry_dsns(),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_a_generated_secret_of_every_family_never_survives_redaction(family):
    @settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
    @given(in_context(FAMILIES[family]))
    def check(case: tuple[str, str]) -> None:
        _assert_hidden(*case)

    check()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(st.lists(st.one_of(*FAMILIES.values()), min_size=2, max_size=4))
def test_secrets_of_several_families_on_one_line_are_all_masked(cases):
    line = " ; ".join(text for text, _ in cases)
    out = redact(line)
    for _, secret in cases:
        assert secret not in out, (line, out)


# The issue's own examples, exactly as the probe printed them.
PROBE = [
    (
        "slack notify failed: https://hooks.slack.com/services/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",
        "Xy9zAb8Cd7Ef6Gh5Ij4Kl3Mn",
    ),
    ("mysql -uroot -pS3cret -e 'select 1' exited 1", "S3cret"),
    ("ERROR 1045 (28000): command mysql -uroot -pS3cret failed", "S3cret"),
    ("running sqlcmd -S db -U sa -PS3cretPw -Q 'select 1'", "S3cretPw"),
    ("apprise: json://h.example.com/?+X-Auth=hdr5ecret&-field=pay5ecret", "5ecret"),
    # found by HYPOTHESIS_PROFILE=explore: a token that ends in "-"
    ("0000000000:AA00000000000000000000000000000000-", "AA00000000000000000000000000000000-"),
    ("AIza0000000000000000000000000000000000-", "0000000000000000000000000000000000-"),
]


@pytest.mark.parametrize(("line", "secret"), PROBE)
def test_the_probes_own_lines_are_masked(line, secret):
    out = redact(line)
    assert secret not in out, out
    assert redact(out) == out


# Lines that share a shape with a secret and hold none: each stays exactly as it is.
ALIKE = [
    "mkdir -p /var/lib/app",
    "ssh -p 2222 deploy@host",
    "docker run -p 8080:80 nginx",
    "mysql -h db -P 3306 -u root -p app",  # -p alone asks for the password; app is the db
    "mysql: [Warning] Using a password on the command line interface can be insecure.",
    "error: cannot run .git/hooks/pre-commit: No such file or directory",
    "POST /webhooks returned 404",
    "GET https://example.com/api/v1/users?page=2 returned 500",
    "redis-cli -h cache ping",
    "login succeeded for bob",
    "curl -fsS https://example.com/health",
    "task-runner finished in 3 s",
    "disk-full: no space left on device",
    "oauth: token endpoint unreachable",
    "sqlplus -s /nolog",
    "pip install --pre package",
    "the default password policy applies",
    "machine learning job done",
]


@pytest.mark.parametrize("line", ALIKE)
def test_lines_that_only_look_like_secrets_are_left_alone(line):
    assert redact(line) == line
