"""The output layer every command prints through (shared/cli_output.py): each -o format from one JSON value, and
--query as JMESPath picks from it."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.cli_output import FORMATS, QueryError, colour_json, render, table

INCIDENTS = {"incidents": [{"id": "inc-1", "status": "open", "count": 3, "tickets": {"log": "t1"}},
                           {"id": "inc-2", "status": "resolved", "count": 10, "extra": None}]}
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                           max_leaves=20)


def test_json_is_the_value_indented_and_a_query_picks_from_it():
    assert json.loads(render(INCIDENTS, "json")) == INCIDENTS
    assert render(INCIDENTS, "json", "incidents[?status=='open'].id") == '[\n  "inc-1"\n]\n'


def test_a_table_has_a_header_a_rule_and_a_row_per_object_with_the_scalar_fields():
    text = render(INCIDENTS, "table", "incidents")
    assert text.splitlines() == ["id     status    count  extra",
                                 "-----  --------  -----  -----",
                                 "inc-1  open      3",
                                 "inc-2  resolved  10"]  # the nested tickets object is no column


def test_a_table_view_chooses_the_rows_and_its_columns_print_without_rows():
    def view(body):
        return [{"incident": i["id"]} for i in body["incidents"]]

    assert render(INCIDENTS, "table", table_view=view).splitlines()[2:] == ["inc-1", "inc-2"]
    assert render({"incidents": []}, "table", table_view=view, columns=("incident",)) == "incident\n--------\n"
    assert table([]) == "" and table("just text") == "just text\n" and table(None) == ""


def test_tsv_is_a_line_per_item_with_tab_separated_values_and_no_header():
    assert render(INCIDENTS, "tsv", "incidents") == "inc-1\topen\t3\ninc-2\tresolved\t10\t\n"
    assert render(INCIDENTS, "tsv", "incidents[].id") == "inc-1\ninc-2\n"
    assert render({"a": "tab\there", "b": True}, "tsv") == "tab here\tTrue\n"
    assert render(None, "tsv") == ""


def test_none_prints_nothing_and_jsonc_is_json_in_colour():
    assert render(INCIDENTS, "none") == ""
    coloured = render(INCIDENTS, "jsonc")
    assert "\x1b[" in coloured
    assert re.sub(r"\x1b\[\d+m", "", coloured) == render(INCIDENTS, "json")


def test_a_query_that_is_not_jmespath_is_a_usage_error_naming_it():
    with pytest.raises(QueryError, match=r"--query 'incidents\[\?' is not valid JMESPath"):
        render(INCIDENTS, "json", "incidents[?")
    with pytest.raises(QueryError, match="-o must be one of"):
        render(INCIDENTS, "yaml")


@given(json_values, st.sampled_from(FORMATS))
def test_every_json_value_renders_in_every_format(value, output):
    text = render(value, output)
    assert isinstance(text, str)
    if output == "json":
        assert json.loads(text) == value
    if output == "jsonc":
        assert json.loads(re.sub(r"\x1b\[\d+m", "", text)) == value
    if output == "tsv" and isinstance(value, list):
        assert len(text.splitlines()) == len(value)  # one line per item, whatever the values hold


@given(json_values)
def test_colour_never_changes_the_text_underneath(value):
    plain = json.dumps(value, indent=2)
    assert re.sub(r"\x1b\[\d+m", "", colour_json(plain)) == plain
