"""The limits' own measures: the token count taken before parsing agrees with
graphql-core's lexer (so no document within the limit is refused by it), and depth and
aliases are measured through fragments once each."""

from __future__ import annotations

from pathlib import Path

import hypothesis_graphql
from graphql import Lexer, Source, StringValueNode, TokenKind, parse
from hypothesis import given, settings
from hypothesis import strategies as st

from schema.limits import Measure, count_tokens, measure_document

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = (ROOT / "schema" / "schema.graphql").read_text()
# Any text, block strings included: print_ast writes some values as """...""".
TEXT = st.builds(StringValueNode, value=st.text(max_size=40), block=st.booleans())
SCALARS = {"Decimal": TEXT, "DateTime": TEXT, "JSON": TEXT}


def lexer_tokens(document: str) -> int:
    lexer, count = Lexer(Source(document)), 0
    while lexer.advance().kind is not TokenKind.EOF:
        count += 1
    return count


def test_strings_count_once_and_comments_not_at_all() -> None:
    documents = [
        '{ order(id: "a { b } ( c ) \\" ...") { id } }',
        '{ order(id: """ block { with } "quotes" and \\""" escaped """) { id } }',
        "# a comment { with } tokens\n{ orders(first: -12) { totalCount } }",
        "query Q($n: Int = 10, $f: Float = -1.5e3) { ...F } fragment F on Query { __typename }",
        SCHEMA,
    ]
    for document in documents:
        assert count_tokens(document) == lexer_tokens(document), document


@settings(max_examples=60, deadline=None)
@given(
    document=st.one_of(
        hypothesis_graphql.queries(SCHEMA, custom_scalars=SCALARS),
        hypothesis_graphql.mutations(SCHEMA, custom_scalars=SCALARS),
    )
)
def test_the_count_before_parsing_agrees_with_the_lexer(document: str) -> None:
    assert count_tokens(document) == lexer_tokens(document)


def test_fragments_are_measured_once_each() -> None:
    fragments = ["fragment F0 on Query { a: projections { name } }"] + [
        f"fragment F{n} on Query {{ ...F{n - 1} ...F{n - 1} }}" for n in range(1, 61)
    ]
    document = parse("query Q { ...F60 }\n" + "\n".join(fragments))
    assert measure_document(document) == {"Q": Measure(depth=1, aliases=2**60)}


def test_a_fragment_cycle_counts_once_and_ends() -> None:
    document = parse(
        "query Q { ...A } fragment A on Query { x: projections { name } ...B }"
        " fragment B on Query { ...A }"
    )
    assert measure_document(document) == {"Q": Measure(depth=1, aliases=1)}
