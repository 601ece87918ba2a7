"""The detector: records to findings, best pattern per record, redaction, discovery."""

from controller.detect.detector import Detector
from controller.detect.library import build_patterns, parse_specs
from controller.model import Category, DetectionSettings, Finding, LogLine, Severity
from tests.unit.test_records import PY_CHAINED

T0 = 1_800_000_000_000_000_000


def run(detector: Detector, texts: list[str], service: str = "backend") -> list[Finding]:
    lines = [LogLine(service, f"{service}-1", T0 + n, text) for n, text in enumerate(texts)]
    return detector.feed(lines, now=0.0) + detector.flush(now=10.0)


def test_a_real_psycopg2_error_is_a_database_finding_with_its_capture():
    line = (
        'psycopg2.OperationalError: connection to server at "127.0.0.1", port 18432 failed: '
        'FATAL:  database "orders" does not exist'
    )
    (finding,) = run(Detector(DetectionSettings(patterns=build_patterns())), [line])
    assert finding.pattern_id == "pg-database-missing"
    assert finding.category is Category.DATABASE
    assert finding.severity is Severity.CRITICAL
    assert finding.captures == {"database": "orders"}
    assert finding.fingerprint.startswith("log:backend:pg-database-missing:")
    assert finding.ts == 1_800_000_000.0


def test_a_traceback_is_one_finding_and_its_specific_cause_wins():
    tb = [
        "Traceback (most recent call last):",
        '  File "/app/app.py", line 5, in <module>',
        "    conn = psycopg2.connect(DSN)",
        'psycopg2.OperationalError: connection to server at "127.0.0.1", port 5432 failed: '
        "Connection refused",
    ]
    (finding,) = run(Detector(DetectionSettings(patterns=build_patterns())), tb)
    assert finding.pattern_id == "conn-refused"
    assert finding.evidence.splitlines() == tb


def test_a_bare_traceback_is_generic_and_keyed_by_its_exception():
    detector = Detector(DetectionSettings(patterns=build_patterns()))
    library_error = [
        "Traceback (most recent call last):",
        '  File "/app/pay.py", line 9, in <module>',
        "    charge(card)",
        "app.payments.CardDeclined: card 4242 declined",
    ]
    (first,) = run(detector, library_error)
    assert first.pattern_id == "python-traceback"
    assert first.line == "app.payments.CardDeclined: card 4242 declined"
    (again,) = run(detector, library_error)
    assert again.fingerprint == first.fingerprint


def test_a_traceback_ending_in_a_built_in_exception_is_that_exceptions_category():
    (finding,) = run(Detector(DetectionSettings(patterns=build_patterns())), PY_CHAINED)
    assert (finding.pattern_id, finding.category) == ("py-code-error", "code")
    # a bug is reported, never restarted for: a server that logs a request's traceback
    # runs on, and one the exception ended is fixed by its exit's ladder
    assert finding.suggested == "none"
    # the first line it matched, and the line the record ends on
    assert finding.line == "KeyError: 'DATABASE_URL' | RuntimeError: cannot configure the database"


def test_an_ignored_pattern_yields_nothing_for_that_service_only():
    ignoring = DetectionSettings(
        patterns=build_patterns(), ignore={"worker": frozenset({"conn-refused"})}
    )
    line = "dial tcp 127.0.0.1:6379: connect: connection refused"
    assert run(Detector(ignoring), [line], service="worker") == []
    assert len(run(Detector(ignoring), [line], service="backend")) == 1


def test_evidence_is_redacted():
    line = 'FATAL: database "app" does not exist (dsn postgresql://app:hunter2@db/app)'
    (finding,) = run(Detector(DetectionSettings(patterns=build_patterns())), [line])
    assert "hunter2" not in finding.evidence and "hunter2" not in finding.line


def test_an_unknown_error_becomes_unclassified_once_it_recurs():
    detector = Detector(DetectionSettings(patterns=build_patterns(), discovery_min_occurrences=3))
    lines = [
        f"2026-11-28 10:00:0{n} ERROR payments: order {n}17 declined by gateway acme"
        for n in range(4)
    ]
    assert run(detector, lines[:2]) == []
    (third,) = run(detector, lines[2:3])
    (fourth,) = run(detector, lines[3:4])
    assert third.kind == "unclassified" and third.pattern_id == "unclassified"
    assert "declined by gateway acme" in third.title
    assert fourth.fingerprint == third.fingerprint


def test_ordinary_lines_yield_nothing():
    quiet = [
        '127.0.0.1 - - [28/Nov/2026:10:00:00 +0000] "GET /health HTTP/1.1" 200 3',
        "2026-11-28 10:00:00 INFO worker: heartbeat written",
    ] * 5
    assert run(Detector(DetectionSettings(patterns=build_patterns())), quiet) == []


def test_a_match_inside_a_record_is_shown_with_the_line_the_record_ends_on():
    tb = [
        "Traceback (most recent call last):",
        '  File "/app/settings.py", line 4, in <module>',
        "    URL = os.environ['PAYMENTS_API_URL']",
        '  File "<frozen os>", line 679, in __getitem__',
        "KeyError: 'PAYMENTS_API_URL'",
    ]
    (finding,) = run(Detector(DetectionSettings(patterns=build_patterns())), tb)
    assert finding.pattern_id == "env-var-missing"
    assert finding.category is Category.CONFIG
    assert finding.line.endswith(" | KeyError: 'PAYMENTS_API_URL'")


def test_a_capture_that_lies_in_a_secret_is_masked_and_one_that_does_not_is_kept():
    (spec,) = parse_specs(
        [
            {
                "id": "login-rejected",
                "regex": "login of (?P<user>[a-z]+) rejected [(]password=(?P<pw>[A-Za-z0-9]+)",
                "category": "auth",
                "severity": "high",
                "title": "Login rejected",
            }
        ],
        "test",
    )
    detector = Detector(DetectionSettings(patterns=build_patterns([spec])))
    (finding,) = run(detector, ["ERROR login of bob rejected (password=Hunter2Leak)"])
    assert finding.captures == {"user": "bob", "pw": "***"}
    assert "Hunter2Leak" not in repr(finding)
