"""Write the generated references in docs/ from the code, so they cannot drift from it.

    .venv/bin/python scripts/gen_docs.py          # rewrite both (or: scripts/gen-docs)
    .venv/bin/python scripts/gen_docs.py --check  # exit 1, naming the stale file, if one is

- docs/desired-state-reference.md: a table per object of the desired state's JSON Schema
  (``controller schema``, built from the models with a description on every property):
  field, type, default, description; the objects in the order they are first reached
  from the top of the file.
- docs/cli-reference.md: ``controller --help`` and the ``--help`` of each command
  (``check``, ``schema``, ``status``, ``patterns``), run in a clean environment (no
  ``CONTROLLER_*`` variable can change a default) at a fixed width of 100 columns, so the
  text does not depend on the terminal.

Docs tooling only: it imports the package as any user of it would and is imported by
nothing. tests/unit/test_docs_generated.py runs it with ``--check``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_DOC = ROOT / "docs" / "desired-state-reference.md"
CLI_DOC = ROOT / "docs" / "cli-reference.md"
COMMANDS = ("", "check", "schema", "status", "patterns")  # "": controller itself
WIDTH = "100"

Schema = dict[str, Any]


# --- the desired state's reference, from the JSON Schema ---------------------------------


def _anchor(name: str) -> str:
    return name.lower()


def _cell(text: str) -> str:
    """One line of a table cell: ``code`` as Markdown code, <angle brackets> outside code
    shown as they are (not taken for HTML), pipes escaped."""
    parts = " ".join(text.split()).replace("``", "`").split("`")
    for i in range(0, len(parts), 2):  # the even parts lie outside code spans
        parts[i] = parts[i].replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts).replace("|", "\\|")


def _code(value: Any) -> str:
    return f"`{json.dumps(value)}`"


def _bounds(p: Schema) -> list[str]:
    said = []
    if "minimum" in p:
        said.append(f"at least {p['minimum']}")
    if "exclusiveMinimum" in p:
        said.append(f"more than {p['exclusiveMinimum']}")
    if "maximum" in p:
        said.append(f"at most {p['maximum']}")
    if "exclusiveMaximum" in p:
        said.append(f"less than {p['exclusiveMaximum']}")
    for low, high, unit in (
        ("minLength", "maxLength", "characters"),
        ("minItems", "maxItems", "items"),
    ):
        if low in p and high in p:
            said.append(f"{p[low]} to {p[high]} {unit}")
        elif low in p:
            said.append(f"at least {p[low]} {unit if p[low] != 1 else unit[:-1]}")
        elif high in p:
            said.append(f"at most {p[high]} {unit}")
    if "pattern" in p:
        said.append(f"matching `{p['pattern']}`")
    return said


def _type(p: Schema) -> str:
    """A property's type in words, with links to the objects it holds."""
    if "$ref" in p:
        name = p["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{_anchor(name)})"
    if "anyOf" in p:
        return " or ".join(_type(option) for option in p["anyOf"])
    if "enum" in p:
        return "one of " + ", ".join(_code(v) for v in p["enum"])
    if "const" in p:
        return _code(p["const"])
    kind = p.get("type", "any")
    if isinstance(kind, list):
        kind = " or ".join(kind)
    if kind == "array":
        words = f"list of {_type(p.get('items', {}))}"
    elif kind == "object" and isinstance(p.get("additionalProperties"), dict):
        words = f"map of string to {_type(p['additionalProperties'])}"
    else:
        words = str(kind)
    bounds = _bounds(p)
    return f"{words} ({', '.join(bounds)})" if bounds else words


def _refs(p: Any) -> list[str]:
    """The $defs a schema fragment refers to, in order of appearance."""
    if isinstance(p, dict):
        found = [p["$ref"].rsplit("/", 1)[-1]] if "$ref" in p else []
        for value in p.values():
            found += _refs(value)
        return found
    if isinstance(p, list):
        return [name for item in p for name in _refs(item)]
    return []


def _fields_defaults(p: Schema, defs: dict[str, Schema]) -> bool:
    """The default is the object its fields' own defaults make (said so, not repeated)."""
    name = p["$ref"].rsplit("/", 1)[-1] if "$ref" in p else ""
    fields = defs.get(name, {}).get("properties", {})
    made = {k: f["default"] for k, f in fields.items() if "default" in f}
    return isinstance(p.get("default"), dict) and bool(fields) and p["default"] == made


def _object_table(obj: Schema, defs: dict[str, Schema]) -> list[str]:
    required = set(obj.get("required", []))
    lines = ["| field | type | default | description |", "|---|---|---|---|"]
    for name, p in obj.get("properties", {}).items():
        if _fields_defaults(p, defs):
            default = "its fields' defaults"
        elif "default" in p:
            default = _code(p["default"])
        else:
            default = "(required)" if name in required else "-"
        cells = (f"`{name}`", _type(p), default)
        described = _cell(p.get("description", ""))
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + f" | {described} |")
    return lines


def schema_reference(schema: Schema) -> str:
    defs: dict[str, Schema] = schema.get("$defs", {})
    order: list[str] = []
    queue = _refs(schema.get("properties", {}))
    while queue:  # breadth first from the top: the file, then what it holds
        name = queue.pop(0)
        if name in order or name not in defs:
            continue
        order.append(name)
        queue += _refs(defs[name])
    order += sorted(set(defs) - set(order))
    out = [
        "# Desired-state reference",
        "",
        "<!-- Generated by scripts/gen-docs from `controller schema`; do not edit. -->",
        "",
        "Every field of `desired_state/<env>.yaml` (and of a compose file's `x-controller:`,"
        " which takes a service's fields and the stack's `remediation`, `detection`, `notify`,"
        " `rollback` and `predict`), generated from the JSON Schema the models give"
        " (`controller schema`, also `desired_state/schema.json`). What the fields do"
        " together, with examples: [configuration.md](configuration.md).",
        "",
        "## The file",
        "",
        _cell(schema.get("description", "")),
        "",
        *_object_table(schema, defs),
    ]
    for name in order:
        d = defs[name]
        out += ["", f"## {name}", ""]
        if d.get("description"):
            out += [_cell(d["description"]), ""]
        if "properties" in d:
            out += _object_table(d, defs)
        else:
            out.append(f"{_type(d)}.".capitalize())
    return "\n".join(out) + "\n"


# --- the CLI reference, from --help ------------------------------------------------------


def _help(command: str) -> str:
    argv = [command, "--help"] if command else ["--help"]
    env = {"PATH": os.environ.get("PATH", ""), "COLUMNS": WIDTH, "LC_ALL": "C.UTF-8"}
    done = subprocess.run(  # noqa: S603 - our own interpreter and a fixed argv, no shell
        [sys.executable, "-c", "import sys; from controller.cli import main; main()", *argv],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    if done.returncode != 0:
        raise SystemExit(f"controller {' '.join(argv)} failed: {done.stderr}")
    return done.stdout


def cli_reference() -> str:
    out = [
        "# CLI reference",
        "",
        "<!-- Generated by scripts/gen-docs from each command's --help; do not edit. -->",
        "",
        "The `--help` of `controller` and of each of its commands, as they print it (at 100"
        " columns). How to use them: [operations.md](operations.md).",
    ]
    for command in COMMANDS:
        name = f"controller {command}".strip()
        out += ["", f"## `{name}`", "", "```", _help(command).rstrip("\n"), "```"]
    return "\n".join(out) + "\n"


def outputs() -> dict[Path, str]:
    from controller.desired.schema import json_schema

    return {SCHEMA_DOC: schema_reference(json_schema()), CLI_DOC: cli_reference()}


def main(argv: list[str]) -> int:
    wanted = outputs()
    if "--check" in argv:
        stale = [p for p, text in wanted.items() if not p.is_file() or p.read_text() != text]
        for path in stale:
            print(f"{path.relative_to(ROOT)} is stale: run scripts/gen-docs", file=sys.stderr)
        return 1 if stale else 0
    for path, text in wanted.items():
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
