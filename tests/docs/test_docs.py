"""The reference pages must say what the code does: docs/configuration.md lists exactly the keys
the loader accepts, per table, and docs/error-codes.md lists exactly the codes of
core/error_codes.{h,cc}. Both sides are read from the sources with regular expressions, so a key
or code added to one side only fails here.

Run: /usr/bin/python3 -m pytest -q tests/docs   (CTest: label `docs`)
"""

from __future__ import annotations

import re
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[2]
DOCS = SOURCE / "docs"

# The loader function that reads a table -> the heading of that table's section in the docs.
READERS = {
    "ReadServer": "[server]",
    "ReadStorage": "[storage]",
    "ReadDatabase": "[database]",
    "ReadDelivery": "[delivery]",
    "ReadAlerts": "[alerts]",
    "ReadHttp": "[http]",
    "ReadAccount": "[[account]]",
    "ReadDataArea": "[[data_area]]",
    "ReadRoute": "[[route]]",
}
TOP_LEVEL = "Top level"


def loader_keys() -> dict[str, set[str]]:
    """Section -> keys, from the CheckKeys({...}) calls in config/*.cc (each attributed to the
    Read* function it stands in) and kTopLevelKeys in config/loader.cc."""
    sections: dict[str, set[str]] = {}
    for path in sorted((SOURCE / "config").glob("*.cc")):
        if path.name.endswith("_test.cc"):
            continue
        text = path.read_text()
        functions = [(m.start(), m.group(1)) for m in
                     re.finditer(r"^(?:void|bool|Status)\s+(\w+)\s*\(", text, re.M)]
        for call in re.finditer(r"CheckKeys\(\s*\{(.*?)\}\s*\)", text, re.S):
            if "known" in call.group(1) and '"' not in call.group(1):
                continue  # the definition of CheckKeys itself
            owner = [name for start, name in functions if start < call.start()]
            assert owner, f"{path.name}: CheckKeys outside a function"
            assert owner[-1] in READERS, (
                f"{path.name}: {owner[-1]} checks keys of a table this test does not know: "
                "add it to READERS and document the table in docs/configuration.md")
            keys = set(re.findall(r'"([^"]+)"', call.group(1)))
            sections.setdefault(READERS[owner[-1]], set()).update(keys)
    loader = (SOURCE / "config/loader.cc").read_text()
    top = re.search(r"kTopLevelKeys\s*\{(.*?)\};", loader, re.S)
    assert top, "kTopLevelKeys not found in config/loader.cc"
    sections[TOP_LEVEL] = set(re.findall(r'"([^"]+)"', top.group(1)))
    return sections


def documented_keys() -> dict[str, set[str]]:
    """Section heading (## ...) -> the keys in the first column of its tables."""
    sections: dict[str, set[str]] = {}
    current = None
    for line in (DOCS / "configuration.md").read_text().splitlines():
        heading = re.match(r"^##\s+(.*?)\s*$", line)
        if heading:
            current = heading.group(1)
            continue
        row = re.match(r"^\|\s*`([^`]+)`\s*\|", line)
        if row and current is not None:
            sections.setdefault(current, set()).add(row.group(1))
    return sections


def test_every_key_the_loader_accepts_is_documented_and_no_other():
    code = loader_keys()
    docs = documented_keys()
    assert set(READERS.values()) | {TOP_LEVEL} == set(code), "a table has no CheckKeys call"
    for section, keys in code.items():
        documented = docs.get(section, set())
        assert keys - documented == set(), (
            f"docs/configuration.md, section '{section}': undocumented keys")
        assert documented - keys == set(), (
            f"docs/configuration.md, section '{section}': documented keys the loader refuses")
    extra = {s: k for s, k in docs.items() if s not in code}
    assert extra == {}, f"key tables under headings that are no configuration table: {extra}"


def test_the_configuration_examples_use_only_accepted_keys():
    """The default configuration and the reference's complete example: every key accepted."""
    import tomllib

    code = loader_keys()
    text = (DOCS / "configuration.md").read_text()
    example = re.search(r"## A complete example\s+```toml\n(.*?)```", text, re.S)
    assert example, "configuration.md has no complete example"
    shipped = (SOURCE / "config/fordeler.toml.example").read_text()
    for name, source in [("configuration.md example", example.group(1)),
                         ("fordeler.toml.example", shipped)]:
        config = tomllib.loads(source)
        assert set(config) <= code[TOP_LEVEL], name
        for table in ["server", "storage", "database", "delivery"]:
            assert set(config.get(table, {})) <= code[f"[{table}]"], f"{name} [{table}]"
        for table in ["account", "data_area", "route"]:
            for entry in config.get(table, []):
                assert set(entry) <= code[f"[[{table}]]"], f"{name} [[{table}]]"


def code_table() -> dict[int, str]:
    header = (SOURCE / "core/error_codes.h").read_text()
    values = {m.group(1): int(m.group(2))
              for m in re.finditer(r"\b(k\w+)\s*=\s*(\d+)\s*,", header)}
    names = (SOURCE / "core/error_codes.cc").read_text()
    table = {}
    for m in re.finditer(r'\{\s*ErrorCode::(k\w+)\s*,\s*"([A-Z_]+)"\s*\}', names):
        table[values[m.group(1)]] = m.group(2)
    assert len(table) >= 14, "error_codes.cc: name table not found"
    return table


def test_error_code_table_matches_the_code():
    text = (DOCS / "error-codes.md").read_text()
    rows = re.findall(r"^\|\s*(\d{4})\s*\|\s*([A-Z_]+)\s*\|(.*)\|\s*$", text, re.M)
    documented = {int(code): name for code, name, _ in rows}
    assert len(documented) == len(rows), "error-codes.md lists a code twice"
    assert documented == code_table()
    for code, name, rest in rows:
        when, todo = [cell.strip() for cell in rest.split("|")[:2]]
        assert when and todo, f"{code} {name}: 'when' and 'what to do' must not be empty"
