"""The estimator: one scikit-learn object whose only input is the raw URL string.

A soft-voting ensemble of two model families on two views of the URL (both
views are ONNX sub-graphs, see :mod:`pipeline.training.features`):

* ``char_tfidf_lr``: character n-gram TF-IDF of the host and of the path,
  side by side, + logistic regression;
* ``lexical_trees``: host and path features + gradient-boosted trees.

Every choice here is constrained by what converts to ONNX with exact parity
(see docs/design.md).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.ensemble import HistGradientBoostingClassifier, VotingClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from pipeline.training.features import LexicalFeatures, as_url_column, url_parts

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


def _char_vectorizer(ngram_range, max_features: int, min_df: int) -> RawCharTfidfVectorizer:
    return RawCharTfidfVectorizer(analyzer="char", lowercase=False, ngram_range=tuple(ngram_range),
                                  max_features=max_features, min_df=min_df, dtype=np.float32)


class HostPathTfidf(TransformerMixin, BaseEstimator):
    """Character n-gram TF-IDF of the host and of the path, concatenated.

    Taken separately, ``login`` in a host and ``login`` in a path are different
    evidence. The vocabulary (and idf) is fitted on a seeded sample of at most
    ``fit_sample`` URLs: counting every n-gram of every URL in Python dicts is
    what bounds training memory, and a sample finds the same frequent n-grams.
    ``transform`` works in blocks of ``block_size`` URLs (see there).
    """

    block_size = 20_000  # not a constructor parameter: it changes memory, never the result

    def __init__(self, ngram_range=(1, 4), host_features: int = 12000, path_features: int = 8000,
                 min_df: int = 5, fit_sample: int | None = None, random_state: int = 0):
        self.ngram_range = ngram_range
        self.host_features = host_features
        self.path_features = path_features
        self.min_df = min_df
        self.fit_sample = fit_sample
        self.random_state = random_state

    def fit(self, X, y=None):
        host, path = url_parts(X)
        if self.fit_sample and len(host) > self.fit_sample:
            keep = np.sort(np.random.default_rng(self.random_state).choice(len(host), self.fit_sample,
                                                                            replace=False))
            host, path = host[keep], path[keep]
        self.host_ = _char_vectorizer(self.ngram_range, self.host_features, self.min_df).fit(host)
        self.path_ = _char_vectorizer(self.ngram_range, self.path_features, self.min_df).fit(path)
        return self

    def transform(self, X):
        """The CSR matrix of all rows, built ``block_size`` URLs at a time.

        scikit-learn collects every row's n-gram indices in Python lists before making arrays
        (tens of bytes per non-zero), and the host/path stacking copies the result: done on all
        rows at once that is several times the matrix itself. Each row's TF-IDF depends on that
        row alone, so the blocks stack into the same matrix, bit for bit.
        """
        column = as_url_column(X)
        size = max(1, int(self.block_size))
        if len(column) <= size:
            return self._transform_block(column)
        return stack_rows(self._transform_block(column[i:i + size]) for i in range(0, len(column), size))

    def _transform_block(self, column):
        host, path = url_parts(column)
        return sp.hstack([self.host_.transform(host), self.path_.transform(path)], format="csr")

    @property
    def vocabulary_size(self) -> int:
        return len(self.host_.vocabulary_) + len(self.path_.vocabulary_)


def stack_rows(blocks) -> sp.csr_matrix:
    """Row-stack CSR blocks (same width and dtype) into one CSR matrix, as ``sp.vstack`` would.

    Blocks are consumed one at a time (pass a generator) and appended to arrays grown in place
    (``ndarray.resize``: realloc, which the C library does by remapping pages for large arrays),
    so at most one block exists besides the result. Collecting the blocks first costs twice the
    result: the freed blocks stay in the heap while the result is filled.
    """
    data: np.ndarray | None = None
    indices = np.empty(0, dtype=np.int32)
    ends, n_rows, nnz = [np.zeros(1, dtype=np.int64)], 0, 0
    for block in blocks:
        if data is None:
            n_cols, dtype = block.shape[1], block.dtype
            data, indices = np.empty(max(block.nnz, 1), dtype=dtype), np.empty(max(block.nnz, 1), dtype=np.int32)
        if block.shape[1] != n_cols or block.dtype != dtype:
            raise ValueError(f"stack_rows: block of shape {block.shape} and dtype {block.dtype} does not match "
                             f"width {n_cols} and dtype {dtype}")
        if nnz + block.nnz > len(data):
            grown = max(nnz + block.nnz, int(len(data) * 1.5))
            data.resize(grown, refcheck=False)
            indices.resize(grown, refcheck=False)
        data[nnz:nnz + block.nnz], indices[nnz:nnz + block.nnz] = block.data, block.indices
        ends.append(block.indptr[1:].astype(np.int64) + nnz)
        n_rows, nnz = n_rows + block.shape[0], nnz + block.nnz
        del block
    if data is None:
        raise ValueError("stack_rows: no blocks")
    data.resize(nnz, refcheck=False)
    indices.resize(nnz, refcheck=False)
    index_dtype = np.int32 if max(nnz, n_rows, n_cols) <= np.iinfo(np.int32).max else np.int64
    indptr = np.concatenate(ends).astype(index_dtype, copy=False)
    return sp.csr_matrix((data, indices.astype(index_dtype, copy=False), indptr), shape=(n_rows, n_cols), copy=False)


def _check_convertible(tfidf: dict) -> None:
    if tfidf.get("sublinear_tf") or tfidf.get("analyzer", "char") != "char" or tfidf.get("lowercase"):
        raise ValueError("train.char_tfidf: only analyzer=char, lowercase=false, sublinear_tf=false "
                         "convert to ONNX with exact parity")


def build_model(params: dict) -> VotingClassifier:
    """The untrained ensemble, configured from ``params['train']``."""
    tfidf, lr, trees = params["char_tfidf"], params["logistic_regression"], params["lexical_trees"]
    _check_convertible(tfidf)
    seed = params["seed"]
    text_member = Pipeline([
        ("tfidf", HostPathTfidf(ngram_range=(tfidf["ngram_min"], tfidf["ngram_max"]),
                                host_features=tfidf["host_features"], path_features=tfidf["path_features"],
                                min_df=tfidf["min_df"], fit_sample=tfidf.get("fit_sample"), random_state=seed)),
        ("clf", LogisticRegression(C=lr["C"], max_iter=lr["max_iter"], random_state=seed)),
    ])
    lexical_member = Pipeline([
        ("features", LexicalFeatures()),
        ("clf", HistGradientBoostingClassifier(
            max_iter=trees["max_iter"], learning_rate=trees["learning_rate"],
            max_leaf_nodes=trees["max_leaf_nodes"], min_samples_leaf=trees["min_samples_leaf"],
            l2_regularization=trees.get("l2_regularization", 0.0), early_stopping=False, random_state=seed)),
    ])
    weights = np.asarray(params["weights"], dtype=np.float64)
    if weights.shape != (len(MEMBERS),):
        raise ValueError(f"train.weights must list {len(MEMBERS)} numbers (one per member {MEMBERS}), "
                         f"got {params['weights']!r}")
    return VotingClassifier(estimators=list(zip(MEMBERS, (text_member, lexical_member))),
                            voting="soft", weights=weights, flatten_transform=False)


def fit(model: VotingClassifier, urls, labels) -> VotingClassifier:
    """Fit the ensemble on URL strings and their 0/1 labels."""
    model.fit(as_input(urls), np.asarray(labels))
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


def scores(model, urls) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(ensemble P(phishing), {member: P(phishing)}) with each member scored once.

    The ensemble is the same weighted average VotingClassifier.predict_proba
    computes, over the same stacked member probabilities, so it is bit-identical.
    """
    x = as_input(urls)
    probas = np.asarray([est.predict_proba(x) for est in model.estimators_])
    ensemble = np.average(probas, axis=0, weights=model._weights_not_none)[:, 1]
    return ensemble, {name: probas[i][:, 1] for i, name in enumerate(model.named_estimators_)}


def vocabulary_size(model) -> int:
    return model.named_estimators_["char_tfidf_lr"]["tfidf"].vocabulary_size
