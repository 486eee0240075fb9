"""Kim (2014)'s tokeniser: the ``clean_str`` rules of his CNN_sentence code, written from the rules.

1. every character other than an ASCII letter, a digit or one of ``( ) , ! ? ' ` `` becomes a
   space (so accented letters and other punctuation split words);
2. the clitics 's 've n't 're 'd 'll are split off their word ("don't" → "do n't");
3. the punctuation , ! ( ) ? becomes a token of its own;
4. runs of whitespace collapse to one space and the ends are stripped;
5. everything is lower-cased, except for TREC, whose capitals (the question words, names)
   Kim kept.

One difference on purpose: Kim's Python 2 replacement strings ``" \\( "`` put a backslash into
the text, so his tokens for brackets were ``\\(`` and ``\\)``; here they are ``(`` and ``)``,
which is what the rule meant and changes nothing for the model (a token is a token).
"""

from __future__ import annotations

import re

__all__ = ["clean_text", "tokenize"]

_OUTSIDE_ALPHABET = re.compile(r"[^A-Za-z0-9(),!?'`]")
_CLITICS = re.compile(r"('s|'ve|n't|'re|'d|'ll)")
_PUNCTUATION = re.compile(r"([,!()?])")
_SPACES = re.compile(r"\s{2,}")


def clean_text(text: str, lowercase: bool = True) -> str:
    """``text`` cleaned by Kim's rules (module docstring), tokens separated by single spaces.

    Example: ``clean_text("It's not (quite) Hollywood!")`` → ``"it 's not ( quite ) hollywood !"``.
    """
    text = _OUTSIDE_ALPHABET.sub(" ", text)
    text = _CLITICS.sub(r" \1", text)
    text = _PUNCTUATION.sub(r" \1 ", text)
    text = _SPACES.sub(" ", text).strip()
    return text.lower() if lowercase else text


def tokenize(text: str, lowercase: bool = True) -> list[str]:
    """The tokens of ``text`` by Kim's rules: ``tokenize("Don't go") == ["do", "n't", "go"]``."""
    return clean_text(text, lowercase).split()
