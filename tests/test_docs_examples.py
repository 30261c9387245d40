"""Every python block of docs/api.md runs: each section after *Setup*, in a
fresh namespace (the blocks hold their own asserts: shapes, loss going down,
bit-identical resume)."""

import os
import re

import pytest

DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "api.md")


def _sections() -> dict[str, list[str]]:
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    out: dict[str, list[str]] = {}
    for part in re.split(r"^## ", text, flags=re.M)[1:]:
        title, _, body = part.partition("\n")
        out[title.strip()] = re.findall(r"^```python\n(.*?)^```", body, flags=re.M | re.S)
    return out


SECTIONS = _sections()
EXAMPLES = [t for t, blocks in SECTIONS.items() if blocks and t != "Setup"]


def test_doc_has_the_promised_examples():
    assert SECTIONS.get("Setup"), "docs/api.md lost its Setup block"
    wanted = ("backbone", "vmap", "Gradients", "orbax")
    assert all(any(w in t for t in EXAMPLES) for w in wanted), EXAMPLES


@pytest.mark.parametrize("title", EXAMPLES)
def test_doc_example_runs(title):
    ns: dict = {"__name__": "docs_api_example"}
    for i, code in enumerate(SECTIONS["Setup"] + SECTIONS[title]):
        exec(compile(code, f"docs/api.md [{title} #{i}]", "exec"), ns)
