"""Kim's clean_str rules, case by case."""

from __future__ import annotations

import pytest

from cnnlab.apps.text.tokenize import clean_text, tokenize


@pytest.mark.parametrize("text, expected", [
    # clitics split off their word
    ("it's", "it 's"), ("we've", "we 've"), ("don't", "do n't"), ("they're", "they 're"),
    ("i'd", "i 'd"), ("you'll", "you 'll"), ("can't won't", "ca n't wo n't"),
    # , ! ( ) ? become tokens of their own
    ("wait,what!", "wait , what !"), ("(quite)", "( quite )"), ("why?really", "why ? really"),
    # characters outside Kim's alphabet become spaces; runs of spaces collapse; ends stripped
    ("a -- b ; c: d", "a b c d"), ("café", "caf"), ("  tabs\tand\n\nlines  ", "tabs and lines"),
    ("rock'n'roll", "rock'n'roll"), ("`quoted'", "`quoted'"), ("3.5 stars", "3 5 stars"),
    # lower-cased
    ("Hollywood IS Big", "hollywood is big"),
    ("", ""),
])
def test_kim_rules(text, expected):
    assert clean_text(text) == expected


def test_trec_keeps_capitals_and_tokens_are_the_split_text():
    assert clean_text("How far is Denver ?", lowercase=False) == "How far is Denver ?"
    assert tokenize("It's not (quite) Hollywood!") == [
        "it", "'s", "not", "(", "quite", ")", "hollywood", "!"]
    assert tokenize(" \t ") == []
