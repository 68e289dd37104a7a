"""The README's tables of the point-of-use gate, made from the guideline pack (scripts/gate-table writes them;
tests/guidelines/test_gate_pack.py checks the README holds what the pack says)."""
from __future__ import annotations

from . import Pack, load_pack

START, END = "<!-- gate-table:start (scripts/gate-table) -->", "<!-- gate-table:end -->"
MEANS = {"not-sterile": "the item may not be sterile", "used": "the item was used",
         "client": "not to be used on this client", "person": "the practitioner's training"}


def gate_tables(pack: Pack | None = None) -> str:
    """What the gate refuses, the rule, and whether a manager may override it; the needle items per method."""
    pack = pack or load_pack()
    lines = [START, "", f"Guideline pack `{pack.name}` version {pack.version}.", "",
             "| the gate refuses (code) | rule | because | a manager may override |", "| --- | --- | --- | --- |"]
    for reason in pack.gate.values():
        override = "**yes**, and supervises the treatment" if reason.override == "manager" else "never"
        lines.append(f"| `{reason.code}` | `{reason.rule}` | {MEANS[reason.means]} | {override} |")
    lines += ["", "| method | needle items the gate must accept before finishing (each: any one of) |", "| --- | --- |"]
    for method in pack.methods.values():
        needs = "; ".join(f"{req.title_in('en')} ({', '.join(_item(o) for o in req.any_of)})"
                          for req in method.requires)
        lines.append(f"| `{method.key}` ({method.title_in('en')}) | {needs} |")
    lines += ["", END]
    return "\n".join(lines)


def _item(option) -> str:
    return f"a pack with a {option['pack']} device" if "pack" in option else f"a `{option['unit']}` unit"


def replace_in(text: str, tables: str) -> str:
    """The text with its gate tables (between the markers) replaced."""
    start, end = text.index(START), text.index(END) + len(END)
    return text[:start] + tables + text[end:]
