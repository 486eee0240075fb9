"""predict: class, probability, and n-grams that are real words of the sentence."""

from __future__ import annotations

import numpy as np

from cnnlab.apps.text.predict import predict_sentences
from cnnlab.apps.text.train import TextSettings, train_unit
from cnnlab.apps.text.vocabulary import UNK
from tests.apps.text.toy_data import TINY, toy_corpus


def test_the_ngrams_are_words_of_the_sentence_and_the_telling_word_leads():
    corpus = toy_corpus(120)
    _, model, vocabulary = train_unit(corpus, TextSettings("toy", folds=3, **TINY), seed=0,
                                      fold=0)
    long = " ".join(["w1", "w2"] * 30 + ["awful"])  # longer than any training sentence
    sentences = ["w3 w7 superb w12 w4", "awful w5", "w8 w9 awful w2 mystery", long]
    predictions = predict_sentences(model, vocabulary, True, sentences, top=3)
    assert [p.label for p in predictions] == ["pos", "neg", "neg", "neg"]
    for prediction in predictions:
        assert 0.5 < prediction.probability <= 1
        assert np.isclose(prediction.probabilities.sum(), 1)
        assert 1 <= len(prediction.ngrams) <= 3
        spans = [(g.start, len(g.words)) for g in prediction.ngrams]
        assert len(set(spans)) == len(spans)  # windows over the same words are merged
        contributions = [g.contribution for g in prediction.ngrams]
        assert contributions == sorted(contributions, reverse=True)
        for ngram in prediction.ngrams:
            assert 1 <= len(ngram.words) <= 5 and ngram.filters >= 1
            words = [w.replace(f"({UNK})", "") for w in ngram.words]
            # a contiguous run of the sentence's own tokens, where the n-gram says it starts
            assert words == prediction.tokens[ngram.start:ngram.start + len(words)]
    assert "superb" in predictions[0].ngrams[0].words
    assert "awful" in predictions[1].ngrams[0].words
    unknown = [w for g in predictions[2].ngrams for w in g.words if UNK in w]
    assert all(w == f"mystery({UNK})" for w in unknown)
