"""scripts/strip_elf.py, the image's stripper (its build stage has no binutils), on real ELF
files of this machine: PyYAML's extension module and the Python interpreter. Stripped,
they hold no .symtab and no debug info, are smaller, and still work (the extension
imports and parses YAML in a fresh interpreter; the interpreter runs). What it cannot
strip safely (not ELF, 32-bit, big-endian, relocatable, data appended, a removed section
inside a segment) is left byte for byte as it was, with one line saying why."""

from __future__ import annotations

import importlib.util
import shutil
import stat
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "strip_elf.py"
SHDR = struct.Struct("<IIQQQQIIQQ")  # an ELF64 section header


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("strip_elf", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["strip_elf"] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    return module


strip_elf = _load()


def section_names(path: Path) -> list[str]:
    """The section names, read here without the stripper's code (readelf -S's list)."""
    data = path.read_bytes()
    shoff, shentsize, shnum, shstrndx = (
        struct.unpack_from("<Q", data, 0x28)[0],
        *struct.unpack_from("<HHH", data, 0x3A),
    )
    headers = [SHDR.unpack_from(data, shoff + i * shentsize) for i in range(shnum)]
    names_at = headers[shstrndx][4]
    return [data[names_at + h[0] : data.index(b"\0", names_at + h[0])].decode() for h in headers]


def run(*argv: str | Path, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=120, check=False, **kw
    )


def strip(*paths: Path) -> subprocess.CompletedProcess[str]:
    done = run(sys.executable, SCRIPT, *paths)
    assert done.returncode == 0, done.stderr
    return done


def readelf_is_content(path: Path) -> None:
    """binutils' own reading, where it is installed: no warning about the layout."""
    if shutil.which("readelf") is None:
        return
    for flag in ("-SW", "-lW", "-dW"):
        done = run("readelf", flag, path)
        assert done.returncode == 0 and not done.stderr, done.stderr


@pytest.fixture
def yaml_package(tmp_path: Path) -> Path:
    """A copy of PyYAML (its Python and its libyaml extension, shipped unstripped)."""
    yaml_ext = pytest.importorskip("yaml._yaml", reason="PyYAML without its extension")
    source = Path(yaml_ext.__file__).parent
    copy = tmp_path / "site" / "yaml"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (extension,) = copy.glob("_yaml.*.so")
    if ".symtab" not in section_names(extension):
        pytest.skip("this PyYAML's extension is stripped already")
    return extension


def test_a_stripped_extension_module_has_no_symbols_is_smaller_and_still_imports(yaml_package):
    before = yaml_package.stat().st_size
    assert any(name.startswith(".debug") for name in section_names(yaml_package))
    done = strip(yaml_package)
    assert f"{before:,} -> {yaml_package.stat().st_size:,} bytes" in done.stdout
    names = section_names(yaml_package)
    assert ".symtab" not in names and ".strtab" not in names
    assert not [name for name in names if name.startswith(".debug")]
    assert {".dynsym", ".dynstr", ".text", ".shstrtab", ".comment"} <= set(names)
    assert yaml_package.stat().st_size < before / 2
    readelf_is_content(yaml_package)
    site = yaml_package.parent.parent
    check = (
        f"import sys; sys.path.insert(0, {str(site)!r}); import yaml, yaml._yaml;"
        f"assert yaml._yaml.__file__ == {str(yaml_package)!r}, yaml._yaml.__file__;"
        "print(yaml.load('a: [1, {b: c}]', Loader=yaml.CLoader))"
    )
    imported = run(sys.executable, "-I", "-c", check, cwd=site)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == "{'a': [1, {'b': 'c'}]}"
    # once stripped, nothing is left to strip: the file stays as it is
    stripped = yaml_package.read_bytes()
    assert "nothing to strip" in strip(yaml_package).stdout
    assert yaml_package.read_bytes() == stripped


def test_the_mode_is_kept(yaml_package):
    yaml_package.chmod(0o640)
    strip(yaml_package)
    assert stat.S_IMODE(yaml_package.stat().st_mode) == 0o640


def test_a_stripped_executable_still_runs(tmp_path):
    interpreter = Path(sys.executable).resolve()
    if ".symtab" not in section_names(interpreter):
        pytest.skip(f"{interpreter} has no symbol table")
    copy = tmp_path / "python"
    shutil.copy2(interpreter, copy)
    strip(copy)
    assert ".symtab" not in section_names(copy)
    assert copy.stat().st_size < interpreter.stat().st_size
    readelf_is_content(copy)
    done = run(copy, "-I", "-c", "import sys, json; print(json.dumps(sys.version_info[:2]))",
               env={"PYTHONHOME": sys.base_prefix})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"[{sys.version_info[0]}, {sys.version_info[1]}]"


def _text(so: Path, tmp: Path) -> Path:
    (path := tmp / "script").write_bytes(b"#!/bin/sh\necho hi\n" * 8)
    return path


def _patched(offset: int, value: bytes, name: str) -> Callable[[Path, Path], Path]:
    """The extension with some bytes of its ELF header replaced."""

    def make(so: Path, tmp: Path) -> Path:
        data = bytearray(so.read_bytes())
        data[offset : offset + len(value)] = value
        (path := tmp / name).write_bytes(bytes(data))
        return path

    return make


def _appended(so: Path, tmp: Path) -> Path:
    """The extension with an archive after it (as self-extracting programs carry)."""
    (path := tmp / "appended.so").write_bytes(so.read_bytes() + b"PK\x03\x04zip")
    return path


def _cut(so: Path, tmp: Path) -> Path:
    (path := tmp / "cut.so").write_bytes(so.read_bytes()[:-4096])
    return path


def _loaded_to_the_end(so: Path, tmp: Path) -> Path:
    """The extension, its last PT_LOAD's file size running to the file's end: the symbol
    table and debug info are then inside a segment."""
    data = bytearray(so.read_bytes())
    phoff, phnum = struct.unpack_from("<Q", data, 0x20)[0], struct.unpack_from("<H", data, 0x38)[0]
    loads = [phoff + i * 56 for i in range(phnum) if data[phoff + i * 56] == 1]  # PT_LOAD
    p_offset = struct.unpack_from("<Q", data, loads[-1] + 8)[0]
    struct.pack_into("<Q", data, loads[-1] + 32, len(data) - p_offset)  # p_filesz
    (path := tmp / "loaded.so").write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (_text, "not an ELF file"),
        (_patched(4, b"\x01", "elf32.so"), "not ELF64 little-endian"),  # EI_CLASS
        (_patched(5, b"\x02", "big.so"), "not ELF64 little-endian"),  # EI_DATA
        (_patched(16, b"\x01\x00", "object.o"), "relocatable object"),  # e_type ET_REL
        (_appended, "belong to no section"),
        (_loaded_to_the_end, "lies inside a segment"),
        (_cut, "truncated"),
    ],
    ids=["text", "32-bit", "big-endian", "relocatable", "appended", "in-a-segment", "truncated"],
)
def test_what_it_cannot_strip_safely_is_left_as_it_is_with_the_reason(
    yaml_package: Path, tmp_path: Path, make: Callable[[Path, Path], Path], why: str
) -> None:
    odd = make(yaml_package, tmp_path)
    before = odd.read_bytes()
    done = strip(odd)
    line, _total = done.stdout.splitlines()
    assert line.startswith(f"{odd}: left as it is: ") and why in line, line
    assert odd.read_bytes() == before
    assert not list(tmp_path.glob(f".{odd.name}.*"))  # no temporary file left behind


def test_a_missing_file_is_an_error():
    done = run(sys.executable, SCRIPT, "/nonexistent/lib.so")
    assert done.returncode == 2 and "/nonexistent/lib.so" in done.stderr


def test_the_strip_function_renumbers_links_and_keeps_the_loaded_bytes(yaml_package):
    data = bytearray(yaml_package.read_bytes())
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    # links across the removed sections, which real files lack: .comment's to .shstrtab
    # (renumbered), .shstrtab's to .symtab (removed: 0)
    names = section_names(yaml_package)
    comment, shstrtab, symtab = (names.index(n) for n in (".comment", ".shstrtab", ".symtab"))
    assert comment < symtab < shstrtab
    struct.pack_into("<I", data, shoff + comment * 64 + 40, shstrtab)
    struct.pack_into("<I", data, shoff + shstrtab * 64 + 40, symtab)
    yaml_package.write_bytes(data)
    out = strip_elf.strip(bytes(data))
    assert out is not None
    new_shoff = struct.unpack_from("<Q", out, 0x28)[0]
    assert new_shoff % 8 == 0 and new_shoff < shoff
    # the loaded part is the same bytes (the ELF header aside)
    phoff, phnum = struct.unpack_from("<Q", data, 0x20)[0], struct.unpack_from("<H", data, 0x38)[0]
    ends = []
    for i in range(phnum):
        p_offset, _vaddr, _paddr, p_filesz = struct.unpack_from("<QQQQ", data, phoff + i * 56 + 8)
        ends.append(p_offset + p_filesz)
    end = max(ends)
    assert out[64:end] == data[64:end]
    # every section kept holds the same bytes as before, at its alignment, and links to
    # the same section as before (.dynsym -> .dynstr, ...)
    (copy := yaml_package.with_name("copy.so")).write_bytes(out)
    names_before, names_after = section_names(yaml_package), section_names(copy)
    assert len(names_after) == struct.unpack_from("<H", out, 0x3C)[0] < len(names_before)
    for i, name in enumerate(names_after):
        _, kind, _, _, offset, size, link, _, align, _ = SHDR.unpack_from(out, new_shoff + i * 64)
        j = names_before.index(name)
        _, _, _, _, old_offset, _, old_link, _, _, _ = SHDR.unpack_from(data, shoff + j * 64)
        if name == ".shstrtab":
            assert link == 0  # it linked to .symtab, removed
        else:
            assert names_after[link] == names_before[old_link], name
        assert offset == old_offset or align <= 1 or offset % align == 0, name  # moved: aligned
        if kind != 8:  # NOBITS holds no bytes
            assert out[offset : offset + size] == data[old_offset : old_offset + size], name
