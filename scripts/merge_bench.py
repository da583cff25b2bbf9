#!/usr/bin/env python3
"""Merge BENCHMARKS.md fragments (from scripts/gpu_bench.sh calls) into BENCHMARKS.md.

`seg2track bench` writes one section per run key (device kind, mode, model, image size,
compiled) between `<!-- bench:KEY -->` markers and replaces it whole on a rerun. On the
GPU machine the phases of one key (speed, memory, latency) run in separate `run` calls,
so each call's $OUT/BENCHMARKS.md holds part of a section. This merges them: for each
key, the subsections (`### ...`) of the newer fragment replace those of the same title
and the others are kept; the header lists the command behind each subsection. A
fragment measured on another GPU than the section it meets replaces that section whole.
The plots beside each fragment (benchmarks/*.png, or benchmarks.tar when a call had too
many files) are copied into the benchmarks/ folder next to the target.

    python scripts/merge_bench.py /work/.device/.../BENCHMARKS.md ... [--into BENCHMARKS.md]

Standard library only.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

BLOCK = re.compile(r"<!-- bench:(?P<key>[^ ]+) -->\n(?P<body>.*?)<!-- /bench:(?P=key) -->\n?", re.S)
ORDER = (  # as written
    "Per-frame time",
    "Memory vs",
    "Host overhead",
    "End-to-end latency",
    "Several cameras",
)


@dataclass
class Section:
    key: str
    header: list[str]  # lines before the first subsection, without the command line(s)
    subsections: dict[str, list[str]] = field(default_factory=dict)  # title -> lines
    commands: dict[str, str] = field(default_factory=dict)  # title -> command
    command: str = ""  # a section without subsections (nothing measured)

    @property
    def gpu(self) -> str:
        for line in self.header:
            if line.startswith("- Machine:") and ", GPU " in line:
                return line.split(", GPU ", 1)[1].strip()
        return ""


def _short(title: str) -> str:
    """A subsection's title without its parenthesis: its name in the command list."""
    return title.split(" (")[0]


def parse(key: str, body: str) -> Section:
    lines = body.rstrip("\n").split("\n")
    header: list[str] = []
    section = Section(key, header)
    single = ""
    listed: dict[str, str] = {}
    title = None
    in_commands = False
    for line in lines:
        if line.startswith("### "):
            title = line[4:].strip()
            section.subsections[title] = [line]
            continue
        if title is not None:
            section.subsections[title].append(line)
            continue
        if line.startswith("- Command: "):
            single = line[len("- Command: ") :].strip().strip("`")
            in_commands = False
            continue
        if line.startswith("- Commands:"):
            in_commands = True
            continue
        if in_commands and line.startswith("  - "):
            name, _, command = line[4:].partition(": ")
            listed[name.strip()] = command.strip().strip("`")
            continue
        in_commands = False
        header.append(line)
    for title in section.subsections:
        section.commands[title] = listed.get(_short(title), single)
    section.command = single
    return section


def render(section: Section) -> str:
    titles = sorted(
        section.subsections,
        key=lambda t: next((i for i, p in enumerate(ORDER) if t.startswith(p)), len(ORDER)),
    )
    commands = [section.commands[t] for t in titles]
    header = list(section.header)
    while header and header[-1] == "":
        header.pop()
    if len(set(commands)) > 1:
        header.append("- Commands:")
        header += [f"  - {_short(t)}: `{section.commands[t]}`" for t in titles]
    elif commands or section.command:
        header.append(f"- Command: `{commands[0] if commands else section.command}`")
    parts = [*header, ""]
    for title in titles:
        body = list(section.subsections[title])
        while body and body[-1] == "":
            body.pop()
        parts += [*body, ""]
    return "\n".join(parts).rstrip() + "\n"


def merge(old: Section, new: Section) -> tuple[Section, str]:
    if old.gpu != new.gpu:
        return new, f"measured on {new.gpu or 'no GPU'}, not {old.gpu or 'no GPU'}:"
    merged = Section(new.key, new.header, dict(old.subsections), dict(old.commands), new.command)
    merged.subsections.update(new.subsections)
    merged.commands.update(new.commands)
    return merged, ""


def copy_plots(fragment: Path, plots: Path) -> list[str]:
    copied = []
    folder = fragment.parent / "benchmarks"
    archive = fragment.parent / "benchmarks.tar"
    plots.mkdir(parents=True, exist_ok=True)
    if folder.is_dir():
        for png in sorted(folder.glob("*.png")):
            if not (plots / png.name).exists() or not (plots / png.name).samefile(png):
                shutil.copyfile(png, plots / png.name)
                copied.append(png.name)
    if archive.is_file():
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                name = Path(member.name).name
                if member.isfile() and name.endswith(".png") and "/" not in name:
                    source = tar.extractfile(member)
                    if source is not None:
                        (plots / name).write_bytes(source.read())
                        copied.append(name)
    return copied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("fragments", nargs="+", type=Path, help="BENCHMARKS.md from $OUT")
    parser.add_argument("--into", type=Path, default=Path("BENCHMARKS.md"))
    args = parser.parse_args(argv)

    target = args.into.read_text() if args.into.exists() else ""
    if not target:
        first = args.fragments[0].read_text()
        match = BLOCK.search(first)
        target = first[: match.start()] if match else "# Benchmarks\n"
    for fragment in args.fragments:
        text = fragment.read_text()
        blocks = list(BLOCK.finditer(text))
        if not blocks:
            print(f"{fragment}: no benchmark sections", file=sys.stderr)
            return 1
        for match in blocks:
            new = parse(match["key"], match["body"])
            existing = next((m for m in BLOCK.finditer(target) if m["key"] == new.key), None)
            if existing is None:
                result, note = new, "added"
            else:
                result, note = merge(parse(existing["key"], existing["body"]), new)
                note = f"{note} replaced" if note else "merged"
            block = f"<!-- bench:{new.key} -->\n{render(result)}<!-- /bench:{new.key} -->\n"
            if existing is None:
                target = target.rstrip("\n") + "\n\n" + block
            else:
                target = target[: existing.start()] + block + target[existing.end() :]
            print(f"{new.key}: {note} ({', '.join(map(_short, new.subsections)) or 'header'})")
        copied = copy_plots(fragment, args.into.parent / "benchmarks")
        if copied:
            print(f"  plots: {', '.join(copied)} -> {args.into.parent / 'benchmarks'}/")
    args.into.write_text(target)
    print(f"wrote {args.into}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
