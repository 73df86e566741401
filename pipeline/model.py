"""The estimator: one scikit-learn object whose only input is the raw URL string.

A soft-voting ensemble of two model families on two views of the URL:
character n-gram TF-IDF + logistic regression, and ONNX-defined lexical
features + extremely randomised trees. Every choice here is constrained by
what converts to ONNX with exact parity (see README, design notes).
"""
from __future__ import annotations

import numpy as np
from sklearn.ensemble import ExtraTreesClassifier, VotingClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from pipeline.features import LexicalFeatures

MEMBERS = ("char_tfidf_lr", "lexical_trees")


class RawCharTfidfVectorizer(TfidfVectorizer):
    """Character n-gram TF-IDF that keeps whitespace exactly as given.

    scikit-learn collapses runs of whitespace before building character
    n-grams; the ONNX Tokenizer does not. Both sides treat every character
    literally here, so ``"a  b"`` scores identically in Python and in ONNX.
    """

    def _char_ngrams(self, text_document):
        min_n, max_n = self.ngram_range
        text_len = len(text_document)
        ngrams = []
        if min_n == 1:
            ngrams = list(text_document)
            min_n += 1
        for n in range(min_n, min(max_n + 1, text_len + 1)):
            ngrams.extend(text_document[i: i + n] for i in range(text_len - n + 1))
        return ngrams


def _check_convertible(tfidf: dict) -> None:
    if tfidf.get("sublinear_tf") or tfidf.get("analyzer", "char") != "char" or tfidf.get("lowercase"):
        raise ValueError("train.char_tfidf: only analyzer=char, lowercase=false, sublinear_tf=false "
                         "convert to ONNX with exact parity")


def build_model(params: dict) -> VotingClassifier:
    """The untrained ensemble, configured from ``params['train']``."""
    tfidf, lr, trees = params["char_tfidf"], params["logistic_regression"], params["lexical_forest"]
    _check_convertible(tfidf)
    seed = params["seed"]
    text_member = Pipeline([
        ("tfidf", RawCharTfidfVectorizer(analyzer="char", lowercase=False,
                                         ngram_range=(tfidf["ngram_min"], tfidf["ngram_max"]),
                                         max_features=tfidf["max_features"], min_df=tfidf["min_df"],
                                         dtype=np.float32)),
        ("clf", LogisticRegression(C=lr["C"], max_iter=lr["max_iter"], random_state=seed)),
    ])
    lexical_member = Pipeline([
        ("features", LexicalFeatures()),
        ("clf", ExtraTreesClassifier(n_estimators=trees["n_estimators"], max_depth=trees["max_depth"],
                                     min_samples_leaf=trees["min_samples_leaf"],
                                     max_features=trees["max_features"], n_jobs=-1, random_state=seed)),
    ])
    weights = np.asarray(params["weights"], dtype=np.float64)
    if weights.shape != (len(MEMBERS),):
        raise ValueError(f"train.weights must list {len(MEMBERS)} numbers (one per member {MEMBERS}), "
                         f"got {params['weights']!r}")
    return VotingClassifier(estimators=list(zip(MEMBERS, (text_member, lexical_member))),
                            voting="soft", weights=weights, flatten_transform=False)


def fit(model: VotingClassifier, urls, labels) -> VotingClassifier:
    """Fit, then make prediction single-threaded.

    A forest predicting with several threads adds tree probabilities in
    completion order, so the last bits of a score (and every metric computed
    from it) would vary from run to run. Training stays parallel.
    """
    model.fit(as_input(urls), np.asarray(labels))
    for member in model.named_estimators_.values():
        for step in member.named_steps.values():
            if hasattr(step, "n_jobs"):
                step.n_jobs = 1
    return model


def as_input(urls) -> np.ndarray:
    """The estimator's input: a 1-D object array of URL strings."""
    return np.asarray(list(urls), dtype=object)


def phishing_proba(model, urls) -> np.ndarray:
    return model.predict_proba(as_input(urls))[:, 1]


def member_proba(model, urls) -> dict[str, np.ndarray]:
    """P(phishing) of each fitted member alone, keyed by member name."""
    x = as_input(urls)
    return {name: est.predict_proba(x)[:, 1] for name, est in model.named_estimators_.items()}
