"""Strip symbols and debug info from ELF files, with nothing but Python's standard library.

    python3 scripts/strip_elf.py FILE...   # one line a file, then the total

The image's build stage has no binutils (its base has no strip and no network to get
one), so this does what ``strip`` would for the files it is given: executables and
shared objects (ELF64, little-endian, ET_EXEC or ET_DYN). It removes the sections the
program never loads and never reads at run time: ``.symtab``, ``.strtab`` and every
``.debug*`` section, when they are not allocated (SHF_ALLOC clear). What is loaded (the
bytes the program headers map, up to the last segment's end) is copied unchanged; the
other non-allocated sections that are kept (``.shstrtab``, ``.comment``, notes) follow
it, each at its alignment, and the section header table is written anew at the end.
Section indices are renumbered (``sh_link``, and ``sh_info`` where it names a section;
a link to a removed section becomes 0), and ``e_shoff``, ``e_shnum`` and ``e_shstrndx``
follow. Go panics keep their function names: those come from ``.gopclntab``, which is
loaded.

A file it cannot strip safely is left as it is, with one line saying why: not ELF64
little-endian, a relocatable object (its symbols are needed), a removed section inside a
segment, a removed section numbered before an allocated one (the dynamic symbols'
section numbers would be wrong), data after the loaded part that no section holds (an
appended archive, say). The result is written to a temporary file in the same directory
and renamed over the original, with the original's mode. Exit status 0 unless a file
could not be read or written (2).

Build tooling only: the Dockerfile runs it; tests/unit/test_strip_elf.py tests it.
"""

from __future__ import annotations

import os
import stat
import struct
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

# the ELF64 header: e_ident (16 bytes), then type..shstrndx (little-endian)
EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
PHDR = struct.Struct("<IIQQQQQQ")  # p_type, p_flags, p_offset, p_vaddr, p_paddr, filesz, ...
SHDR = struct.Struct("<IIQQQQIIQQ")  # sh_name, type, flags, addr, offset, size, link, info, ...
ELFCLASS64, ELFDATA2LSB = 2, 1
ET_EXEC, ET_DYN = 2, 3
SHT_NOBITS, SHT_RELA, SHT_REL = 8, 4, 9
SHF_ALLOC, SHF_INFO_LINK = 0x2, 0x40
SHN_LORESERVE = 0xFF00  # from here on, section numbers are special (extended numbering)
MAX_ALIGN = 1 << 16  # a section not loaded that asks for more is not one this was made for


class Refused(Exception):
    """The file is not one this stripper can change safely; the message says why."""


@dataclass
class Section:
    index: int
    name_offset: int  # into the section names' table
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int
    info: int
    addralign: int
    entsize: int
    name: bytes = b""

    @property
    def file_size(self) -> int:
        """Bytes it holds in the file (NOBITS, like .bss, holds none)."""
        return 0 if self.type == SHT_NOBITS else self.size

    def pack(self, offset: int, link: int, info: int) -> bytes:
        return SHDR.pack(
            self.name_offset, self.type, self.flags, self.addr, offset,
            self.size, link, info, self.addralign, self.entsize,
        )  # fmt: skip


def _align(value: int, alignment: int) -> int:
    return value if alignment <= 1 else -(-value // alignment) * alignment


def _removable(section: Section, shstrndx: int) -> bool:
    """What strip removes and nothing reads at run time: not loaded, and a symbol table,
    its strings or debug info (never the section names' own table)."""
    if section.index in (0, shstrndx) or section.flags & SHF_ALLOC:
        return False
    return section.name in (b".symtab", b".strtab") or section.name.startswith(b".debug")


def strip(data: bytes) -> bytes | None:
    """The stripped file, or None when there is nothing to strip; raises Refused."""
    if len(data) < EHDR.size or data[:4] != b"\x7fELF":
        raise Refused("not an ELF file")
    header = list(EHDR.unpack_from(data))
    ident, e_type = header[0], header[1]
    phoff, shoff = header[5], header[6]
    phentsize, phnum, shentsize, shnum, shstrndx = header[9:14]
    if ident[4] != ELFCLASS64 or ident[5] != ELFDATA2LSB:
        raise Refused("not ELF64 little-endian")
    if e_type not in (ET_EXEC, ET_DYN):
        raise Refused("not an executable or shared object (a relocatable object needs its symbols)")
    if phentsize != PHDR.size or shentsize != SHDR.size:
        raise Refused("unexpected program or section header size")
    if shoff == 0 or shnum == 0 or shstrndx >= SHN_LORESERVE:
        raise Refused("no section header table, or extended section numbering")
    if phoff + phnum * PHDR.size > len(data) or shoff + shnum * SHDR.size > len(data):
        raise Refused("truncated: a header table lies past the end of the file")

    # the loaded part: the file's bytes that any program header covers, the headers too
    segments = []
    for i in range(phnum):
        _, _, p_offset, _, _, p_filesz, _, _ = PHDR.unpack_from(data, phoff + i * PHDR.size)
        if p_filesz:
            segments.append((p_offset, p_offset + p_filesz))
    loaded_end = max([EHDR.size, phoff + phnum * PHDR.size, *(end for _, end in segments)])
    if loaded_end > len(data):
        raise Refused("truncated: a segment lies past the end of the file")

    sections = [Section(i, *SHDR.unpack_from(data, shoff + i * SHDR.size)) for i in range(shnum)]
    if not 0 < shstrndx < shnum:
        raise Refused("no section names")
    names = sections[shstrndx]
    if names.offset + names.size > len(data):
        raise Refused("truncated: the section names")
    for section in sections:
        start = names.offset + section.name_offset
        try:
            section.name = data[start : data.index(b"\0", start, names.offset + names.size)]
        except ValueError:
            raise Refused(f"section {section.index} has no name") from None
        if section.offset + section.file_size > len(data):
            raise Refused(f"truncated: section {section.name.decode(errors='replace')}")

    def in_a_segment(section: Section) -> bool:
        begin, end = section.offset, section.offset + section.file_size
        return any(begin < s_end and s_begin < end for s_begin, s_end in segments)

    removed = {s.index for s in sections if _removable(s, shstrndx)}
    if not removed:
        return None
    for section in sections:
        shown = section.name.decode(errors="replace")
        if section.index in removed and section.file_size and in_a_segment(section):
            raise Refused(f"{shown} lies inside a segment")
        if section.flags & SHF_ALLOC and section.index > min(removed):
            raise Refused(f"{shown} (allocated) would be renumbered")
        if section.flags & SHF_ALLOC and section.file_size and not in_a_segment(section):
            raise Refused(f"{shown} (allocated) lies past the loaded segments")

    # past the loaded part, every byte must belong to a section or the section header
    # table (or be zero padding): anything else (an appended archive) would be lost
    held = [(s.offset, s.offset + s.file_size) for s in sections if s.file_size]
    held.append((shoff, shoff + shnum * SHDR.size))
    position = loaded_end
    for begin, end in sorted(held):
        if begin > position and data[position:begin].strip(b"\0"):
            raise Refused(f"bytes at offset {position:#x} belong to no section")
        position = max(position, end)
    if data[position:].strip(b"\0"):
        raise Refused(f"bytes at offset {position:#x} belong to no section")

    # the new file: the loaded part as it is, then the kept sections that lie outside
    # it (in their file order, each at its alignment), then the section header table
    out = bytearray(data[:loaded_end])
    kept = [s for s in sections if s.index not in removed]
    new_offset = {s.index: s.offset for s in kept}
    for section in sorted(kept, key=lambda s: s.offset):
        if section.index == 0 or section.flags & SHF_ALLOC or in_a_segment(section):
            continue  # stays where it is (the loaded part is copied unchanged)
        if section.addralign & (section.addralign - 1) or section.addralign > MAX_ALIGN:
            raise Refused(f"{section.name.decode(errors='replace')}: odd alignment")
        out += bytes(_align(len(out), section.addralign) - len(out))
        new_offset[section.index] = len(out)
        out += data[section.offset : section.offset + section.file_size]

    renumbered = {s.index: i for i, s in enumerate(kept)}
    out += bytes(_align(len(out), 8) - len(out))
    new_shoff = len(out)
    for section in kept:
        # sh_info names a section only for relocations and SHF_INFO_LINK; elsewhere it is a
        # symbol index or a count, left as it is
        info = section.info
        if section.type in (SHT_REL, SHT_RELA) or section.flags & SHF_INFO_LINK:
            info = renumbered.get(info, 0)
        link = renumbered.get(section.link, 0)
        out += section.pack(new_offset[section.index], link, info)

    header[6], header[12], header[13] = new_shoff, len(kept), renumbered[shstrndx]
    out[: EHDR.size] = EHDR.pack(*header)
    return bytes(out)


def strip_file(path: Path) -> str:
    """Strip one file in place (a temporary file renamed over it); the line to print."""
    data = path.read_bytes()
    try:
        stripped = strip(data)
    except Refused as why:
        return f"{path}: left as it is: {why}"
    if stripped is None:
        return f"{path}: nothing to strip ({len(data):,} bytes)"
    mode = stat.S_IMODE(path.stat().st_mode)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(stripped)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return f"{path}: {len(data):,} -> {len(stripped):,} bytes"


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: strip_elf.py FILE...  (see the top of scripts/strip_elf.py)")
        return 0 if argv else 2
    before = after = 0
    failed = False
    for name in argv:
        path = Path(name)
        try:
            size = path.stat().st_size
            print(strip_file(path))
        except OSError as error:
            print(f"{path}: {error}", file=sys.stderr)
            failed = True
            continue
        before, after = before + size, after + path.stat().st_size
    files = "1 file" if len(argv) == 1 else f"{len(argv)} files"
    print(f"{files}: {before / 1e6:.2f} MB -> {after / 1e6:.2f} MB")
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
