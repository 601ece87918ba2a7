"""The layering of docs/architecture.md holds, and the page names what the code has.

The import-linter contracts (pyproject.toml) keep the arrows; these tests keep the page
true: every package and module of ``controller/`` is named in it, its layers are the
contract's, and every module it calls pure imports no I/O.
"""

import ast
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "architecture.md").read_text()
CODE = ROOT / "controller"
IO_MODULES = {"subprocess", "socket", "docker", "requests", "urllib", "http", "threading"}
IO_MODULES |= {"os", "shutil", "apprise", "apscheduler"}


def rows(table_heading: str) -> list[tuple[str, ...]]:
    """The rows of the first table after ``table_heading``: its cells, backticks gone."""
    section = DOC[DOC.index(table_heading) :]
    table = re.search(r"\n(\|.*\|\n)+", section)
    assert table is not None, table_heading
    lines = [line for line in table.group(0).strip().splitlines()[2:] if line.strip()]
    return [tuple(c.strip().strip("`") for c in line.strip("|").split(" | ")) for line in lines]


def layer_table() -> dict[str, tuple[int, str]]:
    return {name: (int(layer), job) for layer, name, job in rows("## Modules and import rules")}


def module_tables() -> dict[str, str]:
    named: dict[str, str] = {}
    for heading in ("### Inside `remediate/`", "### Inside `runtime/`", "### Inside `issues/`"):
        for row in rows(heading):
            module, job = row[0], row[-1]
            prefix = heading.split("`")[1] if "/" not in module else ""
            named[prefix + module] = job
    return named


def test_the_import_contracts_are_kept():
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    done = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_every_package_and_top_level_module_is_named_with_its_layer_as_the_contract_says():
    contract = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c for c in contract["contracts"] if c["type"] == "layers")["layers"]
    expected = {
        name.strip().removeprefix("controller."): number
        for number, row in enumerate(layers, start=1)
        for name in row.split("|")
    }
    named = layer_table()
    assert {name: layer for name, (layer, _) in named.items()} == expected
    on_disk = {p.stem for p in CODE.glob("*.py") if p.stem != "__init__"}
    on_disk |= {p.name for p in CODE.iterdir() if (p / "__init__.py").exists()}
    assert on_disk == set(named), on_disk ^ set(named)


def test_every_module_of_a_package_is_named_in_its_table():
    named = module_tables()
    for package in CODE.iterdir():
        if not (package / "__init__.py").exists():
            continue
        for module in package.glob("*.py"):
            if module.stem == "__init__":
                continue
            assert f"{package.name}/{module.stem}" in named, f"{package.name}/{module.stem}"


def pure_modules() -> list[Path]:
    """Every module whose job on the page begins with "pure"."""
    found = []
    for name, (_, job) in layer_table().items():
        if job.startswith("pure"):
            path = CODE / f"{name}.py"
            found += [path] if path.exists() else sorted((CODE / name).glob("*.py"))
    for name, job in module_tables().items():
        if job.startswith("pure"):
            found.append(CODE / f"{name}.py")
    return found


def test_every_module_the_page_calls_pure_imports_no_io():
    modules = pure_modules()
    names = {f"{p.parent.name}/{p.stem}" for p in modules}
    assert {"remediate/verify", "remediate/plan", "remediate/blame", "remediate/throttle"} <= names
    for path in modules:
        tree = ast.parse(path.read_text())
        imported = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in (
                node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")]
            )
        }
        assert not imported & IO_MODULES, (path.name, imported & IO_MODULES)
