"""The analysts' page's ten questions (docs/analysts.md) run on the published sample year and answer."""

from __future__ import annotations

import pytest
from docs_pages import sql_statements

from sipas_pipeline.publish import read_query as query


def ten_questions() -> list[str]:
    return sql_statements("analysts", "Ten questions")


def test_ten_questions_are_there():
    statements = ten_questions()
    numbered = [s for s in statements if s.startswith("-- ")]
    assert len(numbered) == 10 and len(statements) == 11


@pytest.mark.integration
@pytest.mark.parametrize("sql", ten_questions())
def test_docs_question_runs(sample_db, sql):
    rows = query(sample_db, sql)
    # the sample file holds one run without corrections: what moved and the corrections are rightly empty there
    if "current_changes" in sql or "current_corrections" in sql:
        assert rows == []
    else:
        assert rows, sql
