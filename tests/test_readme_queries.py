"""The README's ten analysts' questions run on the published sample year and answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipas_pipeline.publish import read_query as query

README = Path(__file__).resolve().parents[1] / "README.md"


def analyst_statements() -> list[str]:
    text = README.read_text(encoding="utf-8").split("### For analysts", 1)[1]
    block = text.split("```sql", 1)[1].split("```", 1)[0]
    return [s.strip() for s in block.split(";")
            if any(line.strip() and not line.strip().startswith("--") for line in s.splitlines())]


def test_ten_questions_are_there():
    statements = analyst_statements()
    numbered = [s for s in statements if s.startswith("-- ")]
    assert len(numbered) == 10 and len(statements) == 11


@pytest.mark.integration
@pytest.mark.parametrize("sql", analyst_statements())
def test_readme_question_runs(sample_db, sql):
    rows = query(sample_db, sql)
    # the sample file holds one run without corrections: what moved and the corrections are rightly empty there
    if "current_changes" in sql or "current_corrections" in sql:
        assert rows == []
    else:
        assert rows, sql
