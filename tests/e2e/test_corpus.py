"""The pattern library on errors printed live by real software: a corpus, and its score.

The software in the local images prints its errors here and now: Python 3.11 raises every
built-in exception that ends a process (cc-python), PostgreSQL 15, psql and psycopg2 fail
in the ways services meet (cc-pg15), bash, dash and busybox sh cannot run a command, the
dynamic loader misses a library, runc cannot start an entrypoint (docker run). Node.js and
the JVM are not in the images: where this machine has them (node, java) they print theirs
too. Each case's lines go through the detector as a container's log would; the category
of its strongest finding is held against the one a person would give it. The score is
printed; every built-in Python exception must be right, and the whole at least 90 %.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from controller.detect.detector import Detector
from controller.detect.library import build_patterns
from controller.model import DetectionSettings, Finding, LogLine

CORPUS = Path(__file__).parent / "corpus"
T0 = 1_800_000_000_000_000_000

PYTHON = {
    **dict.fromkeys(
        [
            "ArithmeticError",
            "FloatingPointError",
            "OverflowError",
            "ZeroDivisionError",
            "AssertionError",
            "AttributeError",
            "NameError",
            "UnboundLocalError",
            "TypeError",
            "ValueError",
            "KeyError",
            "IndexError",
            "LookupError",
            "StopIteration",
            "StopAsyncIteration",
            "NotImplementedError",
            "RecursionError",
            "UnicodeError",
            "UnicodeDecodeError",
            "UnicodeEncodeError",
            "UnicodeTranslateError",
            "BufferError",
            "ReferenceError",
            "RuntimeError",
            "GeneratorExit",
            "SystemError",
            "EOFError",
            "BlockingIOError",
            "ChildProcessError",
            "ProcessLookupError",
            "InterruptedError",
            "Exception",
            "BaseException",
            "ExceptionGroup",
            "BaseExceptionGroup",
        ],
        "code",
    ),
    **dict.fromkeys(
        ["ImportError", "ModuleNotFoundError", "SyntaxError", "IndentationError", "TabError"],
        "import",
    ),
    **dict.fromkeys(
        [
            "OSError",
            "FileNotFoundError",
            "FileExistsError",
            "IsADirectoryError",
            "NotADirectoryError",
            "PermissionError",
        ],
        "filesystem",
    ),
    **dict.fromkeys(
        [
            "ConnectionError",
            "ConnectionRefusedError",
            "ConnectionResetError",
            "ConnectionAbortedError",
            "BrokenPipeError",
            "TimeoutError",
        ],
        "connection",
    ),
    "MemoryError": "performance",
    "KeyboardInterrupt": "health",
}
POSTGRES = {
    "pg-database-missing": "database",
    "pg-role-missing": "database",
    "pg-password-auth": "auth",
    "pg-hba-reject": "auth",
    "pg-table-missing": "database",
    "pg-column-missing": "database",
    "pg-unique-violation": "database",
    "pg-syntax-error": "code",
    "pg-statement-timeout": "performance",
    "pg-permission-denied": "auth",
    "pg-deadlock": "database",
    "pg-too-many-connections": "database",
    "psycopg2-database-missing": "database",
    "psycopg2-unique-violation": "database",
    "psycopg2-refused": "connection",
    "pg-not-running": "connection",
}
SERVER_LOG = {  # a line of the server's own log -> its category
    'FATAL:  database "ghost" does not exist': "database",
    'FATAL:  role "reporting" does not exist': "database",
    'FATAL:  password authentication failed for user "app"': "auth",
    "FATAL:  no pg_hba.conf entry for host": "auth",
    'ERROR:  relation "orders" does not exist': "database",
    'ERROR:  column "total" does not exist': "database",
    "ERROR:  duplicate key value violates unique constraint": "database",
    'ERROR:  syntax error at or near "selec"': "code",
    "ERROR:  canceling statement due to statement timeout": "performance",
    "ERROR:  permission denied for table t": "auth",
    "statement: select pg_sleep(3)": "performance",  # logged as slow (over 1 s)
    "ERROR:  deadlock detected": "database",
    "unexpected EOF on client connection": "connection",  # a client killed (pg-client-gone)
    "FATAL:  sorry, too many clients already": "database",
}
SHELL = {
    "bash-command-not-found": "config",
    "dash-not-found": "config",
    "bash-bad-interpreter": "config",
    "bash-exec-format": "config",
    "bash-permission-denied": "config",
    "dash-permission-denied": "config",
    "crlf-interpreter": "config",
    "loader-missing-library": "import",
    "busybox-not-found": "config",
    "runc-entrypoint-missing": "config",
    "runc-entrypoint-not-executable": "config",
    "runc-exec-format": "config",
}
NODE = {
    "TypeError": "code",
    "ReferenceError": "code",
    "SyntaxError": "config",
    "RangeError": "code",
    "EADDRINUSE": "config",
    "ECONNREFUSED": "connection",
    "ENOENT": "filesystem",
    "EACCES": "filesystem",
    "cannot-find-module": "import",
    "unhandled-rejection": "code",
    "heap-out-of-memory": "performance",
}
JVM = {
    "NullPointerException": "code",
    "OutOfMemoryError": "performance",
    "StackOverflowError": "code",
    "ClassNotFoundException": "import",
    "NumberFormatException": "code",
    "ArrayIndexOutOfBoundsException": "code",
    "IllegalStateException": "code",
    "BindException": "config",
    "ConnectException": "connection",
    "main-class-missing": "import",
    "class-file-too-new": "import",
}


@dataclass(frozen=True)
class Case:
    source: str  # the software that printed it
    name: str
    expected: str
    lines: tuple[str, ...]


def run(*argv: str, timeout: float = 180, user: int | None = None) -> str:
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        errors="replace",  # what software prints need not be UTF-8 (the controller reads it so)
        timeout=timeout,
        check=False,
        user=user,
        cwd="/tmp" if user is not None else None,
    )
    return done.stdout + done.stderr


def cases_of(source: str, output: str, expected: dict[str, str]) -> list[Case]:
    """The ``=== CASE NAME`` sections of ``output``."""
    found: list[Case] = []
    name, lines = "", []  # type: ignore[var-annotated]
    for line in [*output.splitlines(), "=== CASE "]:
        if line.startswith("=== "):
            if name in expected:
                found.append(Case(source, name, expected[name], tuple(lines)))
            name, lines = line.removeprefix("=== CASE ").strip(), []
        else:
            lines.append(line)
    return found


def docker_run(image: str, *argv: str, user: str = "") -> str:
    flags = ["--user", user] if user else []
    return run(
        "docker",
        "run",
        "--rm",
        "--network",
        "none",
        *flags,
        "-v",
        f"{CORPUS}:/corpus:ro",
        image,
        *argv,
    )


def corpus() -> list[Case]:
    cases = cases_of(
        "Python 3.11",
        docker_run("cc-python:1", "python3", "/corpus/python_errors.py", user="65534"),
        PYTHON,
    )
    pg = docker_run("cc-pg15:1", "bash", "/corpus/postgres_errors.sh")
    client, _, server = pg.partition("=== SERVER LOG")
    cases += cases_of("PostgreSQL 15, psql, psycopg2", client, POSTGRES)
    for text, category in SERVER_LOG.items():
        line = next(line for line in server.splitlines() if text in line)
        cases.append(Case("PostgreSQL 15 (server log)", text, category, (line,)))
    shell = docker_run("cc-pg15:1", "bash", "/corpus/shell_errors.sh")
    shell += "=== CASE busybox-not-found\n" + docker_run(
        "cc-busybox:1", "sh", "-c", "nginx -g 'daemon off;'"
    )
    with tempfile.TemporaryDirectory() as tmp:
        garbage = Path(tmp) / "server"
        garbage.write_bytes(b"\x7fELF" + bytes(range(1, 60)))
        garbage.chmod(0o755)
        for name, entrypoint in (
            ("runc-entrypoint-missing", "/nonexistent"),
            ("runc-entrypoint-not-executable", "/etc/passwd"),
            ("runc-exec-format", "/server"),
        ):
            shell += f"=== CASE {name}\n" + run(
                "docker",
                "run",
                "--rm",
                "--network",
                "none",
                "-v",
                f"{garbage}:/server:ro",
                "cc-busybox:1",
                entrypoint,
            )
    cases += cases_of("sh, bash, dash, ld.so, runc", shell, SHELL)
    if shutil.which("node"):
        cases += cases_of(
            "Node.js (this machine)",
            run("node", str(CORPUS / "node_errors.js"), user=65534),  # not root: EACCES
            NODE,
        )
    if shutil.which("java") and shutil.which("javac"):
        cases += java_cases()
    return cases


def java_cases() -> list[Case]:
    with tempfile.TemporaryDirectory() as tmp:
        output = run("java", "-Xmx32m", str(CORPUS / "Jvm.java"))
        output += "=== CASE main-class-missing\n" + run("java", "-cp", tmp, "com.example.Main")
        source = Path(tmp) / "Report.java"
        source.write_text("public class Report { public static void main(String[] a) {} }\n")
        run("javac", "-d", tmp, str(source))
        compiled = bytearray((Path(tmp) / "Report.class").read_bytes())
        compiled[6:8] = (65).to_bytes(2, "big")  # a class file of Java 21
        (Path(tmp) / "Report.class").write_bytes(bytes(compiled))
        output += "=== CASE class-file-too-new\n" + run("java", "-cp", tmp, "Report")
    return cases_of("OpenJDK (this machine)", output, JVM)


def classify(detector: Detector, n: int, case: Case) -> Finding | None:
    """The strongest finding of the case's lines, read as one container's log."""
    lines = [
        LogLine("svc", f"case-{n}", T0 + n * 1_000_000_000 + i, text)
        for i, text in enumerate(case.lines)
        if text.strip()
    ]
    findings = detector.feed(lines, 0.0) + detector.forget([f"case-{n}"])
    patterns = {p.id: p for p in detector.settings.patterns}
    return max(
        findings,
        key=lambda f: (not patterns[f.pattern_id].generic, f.severity.rank),
        default=None,
    )


@pytest.mark.timeout(600)
def test_the_library_on_a_corpus_printed_live_by_real_software():
    detector = Detector(DetectionSettings(patterns=build_patterns(), discovery=False))
    cases = corpus()
    assert len([c for c in cases if c.source == "Python 3.11"]) == len(PYTHON)
    rows, right = [], 0
    for n, case in enumerate(cases):
        finding = classify(detector, n, case)
        got = str(finding.category) if finding else "-"
        right += got == case.expected
        pattern = finding.pattern_id if finding else "nothing"
        mark = "ok  " if got == case.expected else "MISS"
        rows.append(f"{mark} {case.source:32} {case.name:34} {case.expected:12} {got:12} {pattern}")
    print("\n".join(["", *rows, f"score: {right} of {len(cases)} in the right category"]))
    wrong_python = [r for r in rows if r.startswith("MISS") and "Python 3.11" in r]
    assert wrong_python == []
    assert right >= 0.9 * len(cases), "\n".join(r for r in rows if r.startswith("MISS"))
