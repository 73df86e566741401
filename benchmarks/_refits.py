"""The shipped ensemble with a member refitted at other settings (sections ``levers`` and ``candidates``)."""
from __future__ import annotations

import copy
import time
import weakref
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.utils import Bunch

from benchmarks._inputs import Inputs
from pipeline.training.metrics import headline_metrics
from pipeline.training.model import as_input, build_model, scores

Vocab = tuple[int, ...]   # (host_features, path_features[, ngram_max]) of the TF-IDF member
Trees = tuple[int, int]   # (max_iter, max_leaf_nodes) of the gradient-boosted trees
Fitted = tuple[Any, float]  # (fitted member, seconds its fit took)

def accuracy(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """ROC AUC and TPR at FPR=1e-2 of scores ``p`` for labels ``y``."""
    m = headline_metrics(y, p, 0.5, [0.01])
    return {"roc_auc": round(m["roc_auc"], 5), "tpr_at_fpr_0.01": round(m["tpr_at_fpr_0.01"], 4)}


def assemble(model: Any, text_member: Any, lex_member: Any) -> Any:
    """A fitted VotingClassifier identical to ``model`` but with other fitted members."""
    m = copy.copy(model)
    m.estimators_ = [text_member, lex_member]
    m.named_estimators_ = Bunch(char_tfidf_lr=text_member, lexical_trees=lex_member)
    return m


def vocabulary(text_member: Any) -> Vocab:
    """(host_features, path_features) the TF-IDF member was fitted with."""
    return text_member["tfidf"].host_features, text_member["tfidf"].path_features


def tree_shape(lex_member: Any) -> Trees:
    """(max_iter, max_leaf_nodes) the gradient-boosted trees were fitted with."""
    return lex_member["clf"].max_iter, lex_member["clf"].max_leaf_nodes


class Refits:
    """The shipped ensemble with a member refitted at other settings; each setting is fitted once.

    ``vocab`` = (host_features, path_features) of the TF-IDF member, ``trees`` = (max_iter,
    max_leaf_nodes) of the gradient-boosted trees; None keeps the shipped member. Every other
    setting comes from ``params['train']``; the soft vote is the shipped VotingClassifier's.
    """

    def __init__(self, inp: Inputs):
        if inp.train is None or inp.test is None or inp.train_params is None:
            raise ValueError("refits need the train and test splits and params['train'] of the model")
        self.inp, self.train_params = inp, inp.train_params
        self.x_train, self.y_train = as_input(inp.train["url"]), inp.train["label"].to_numpy()
        self.x_test, self.y_test = as_input(inp.test["url"]), inp.test["label"].to_numpy()
        self.future = (as_input(inp.future["url"]), inp.future["label"].to_numpy()) if inp.future is not None else None
        text, lex = inp.model.named_estimators_["char_tfidf_lr"], inp.model.named_estimators_["lexical_trees"]
        self.shipped: tuple[Vocab, Trees] = (vocabulary(text), tree_shape(lex))
        self.text: dict[Vocab, Fitted] = {self.shipped[0]: (text, 0.0)}
        self.trees: dict[Trees, Fitted] = {self.shipped[1]: (lex, 0.0)}
        self._features_train: Any = None

    def _params(self, section: str, **values: int) -> dict[str, Any]:
        params = copy.deepcopy(self.train_params)
        params[section].update(values)
        return params

    def text_member(self, vocab: Vocab) -> Fitted:
        """``vocab`` = (host_features, path_features[, ngram_max])."""
        if vocab not in self.text:
            values = {"host_features": vocab[0], "path_features": vocab[1]}
            if len(vocab) > 2:
                values["ngram_max"] = vocab[2]
            ensemble = build_model(self._params("char_tfidf", **values))
            t = time.perf_counter()
            fitted = ensemble.named_estimators["char_tfidf_lr"].fit(self.x_train, self.y_train)
            self.text[vocab] = (fitted, time.perf_counter() - t)
        return self.text[vocab]

    def tree_member(self, trees: Trees) -> Fitted:
        """Only the classifier is refitted: the features are stateless and computed once."""
        if trees not in self.trees:
            features = self.inp.model.named_estimators_["lexical_trees"]["features"]
            if self._features_train is None:
                self._features_train = features.transform(self.x_train)
            ensemble = build_model(self._params("lexical_trees", max_iter=trees[0], max_leaf_nodes=trees[1]))
            t = time.perf_counter()
            fitted = ensemble.named_estimators["lexical_trees"]["clf"].fit(self._features_train, self.y_train)
            self.trees[trees] = (Pipeline([("features", features), ("clf", fitted)]), time.perf_counter() - t)
        return self.trees[trees]

    def model(self, vocab: Vocab | None = None, trees: Trees | None = None) -> tuple[Any, float]:
        """(ensemble, seconds it took to fit its refitted members)."""
        text, text_s = self.text_member(vocab or self.shipped[0])
        lex, lex_s = self.tree_member(trees or self.shipped[1])
        return assemble(self.inp.model, text, lex), text_s + lex_s

    def accuracy(self, model: Any, member: str | None = None) -> dict[str, float]:
        """ROC AUC and TPR@FPR=1e-2 of the ensemble (or of one ``member``) on the test and future splits."""
        def p(x: np.ndarray) -> np.ndarray:
            ensemble, members = scores(model, x)
            return members[member] if member else ensemble

        out = accuracy(self.y_test, p(self.x_test))
        if self.future is not None:
            x_future, y_future = self.future
            out.update({f"future_{k}": v for k, v in accuracy(y_future, p(x_future)).items()})
        return out


_SHARED: weakref.WeakKeyDictionary[Inputs, Refits] = weakref.WeakKeyDictionary()


def shared_refits(inp: Inputs) -> Refits:
    """One Refits per Inputs, so levers and candidates fit each setting once between them."""
    if inp not in _SHARED:
        _SHARED[inp] = Refits(inp)
    return _SHARED[inp]


def variant_label(vocab: Vocab | None = None, trees: Trees | None = None) -> str:
    """How RESULTS.md names a refit: its settings, or "shipped model"."""
    parts = ([f"char_tfidf host_features={vocab[0]}, path_features={vocab[1]}"
              + (f", ngram_max={vocab[2]}" if len(vocab) > 2 else "")] if vocab else []) + \
            ([f"lexical_trees max_iter={trees[0]}, max_leaf_nodes={trees[1]}"] if trees else [])
    return " + ".join(parts) or "shipped model"

