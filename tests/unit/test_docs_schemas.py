"""docs/schemas.md is the generated description of flowviz.schemas, and every column has a meaning."""

from pathlib import Path

from flowviz import schemas

DOC = Path(__file__).resolve().parents[2] / "docs" / "schemas.md"


def test_docs_schemas_is_up_to_date():
    assert DOC.read_text() == schemas.markdown(), "regenerate with: flowviz schemas > docs/schemas.md"


def test_every_column_is_described():
    for title, (_about, columns) in schemas.DOCUMENTED.items():
        for name, _dtype, text in columns:
            assert text.strip(), f"{title}.{name} has no description"
