"""The estimator's TF-IDF member: the blocked transform and what the train stage reads."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from pipeline.stages import train as train_stage
from pipeline.training.model import HostPathTfidf, stack_rows


def _same_csr(a, b) -> None:
    assert type(a) is type(b) and a.format == b.format == "csr"
    assert a.shape == b.shape and a.dtype == b.dtype
    assert a.indices.dtype == b.indices.dtype and a.indptr.dtype == b.indptr.dtype
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert a.data.tobytes() == b.data.tobytes()  # bit for bit, not approximately


@pytest.fixture(scope="module")
def fitted_tfidf(sample_frame):
    urls = sample_frame["url"].to_numpy(dtype=object)
    return HostPathTfidf(host_features=500, path_features=400, min_df=2).fit(urls), urls


@pytest.mark.parametrize("block_size", [1, 333, 1000])
def test_blocked_transform_is_the_one_shot_matrix(fitted_tfidf, block_size):
    tfidf, urls = fitted_tfidf
    urls = urls[:400 if block_size == 1 else 2500]  # a block per URL: 400 transforms already
    one_shot = tfidf._transform_block(urls)  # the whole sample in one block: the transform before blocking
    tfidf.block_size = block_size
    try:
        blocked = tfidf.transform(urls)
    finally:
        del tfidf.block_size
    assert len(urls) > block_size and one_shot.nnz > 0
    _same_csr(blocked, one_shot)


def test_blocked_transform_accepts_lists_and_url_columns(fitted_tfidf):
    tfidf, urls = fitted_tfidf
    tfidf.block_size = 7
    try:
        column = tfidf.transform(urls[:20].reshape(-1, 1))  # [N,1], as ONNX-shaped callers pass it
        as_list = tfidf.transform(list(urls[:20]))
    finally:
        del tfidf.block_size
    _same_csr(column, tfidf._transform_block(urls[:20]))
    _same_csr(as_list, column)


def test_stack_rows_is_vstack_while_growing_its_arrays():
    rng = np.random.default_rng(0)
    # a first block smaller than the rest forces the in-place growth several times
    blocks = [sp.random(n, 50, density=0.2, format="csr", dtype=np.float32, random_state=rng) for n in (1, 0, 11, 5, 40)]
    expected = sp.csr_matrix(sp.vstack(blocks, format="csr"))
    _same_csr(stack_rows(iter(blocks)), expected)


def test_stack_rows_names_a_block_that_does_not_fit():
    blocks = [sp.csr_matrix(np.ones((2, 3), np.float32)), sp.csr_matrix(np.ones((2, 4), np.float32))]
    with pytest.raises(ValueError, match=r"shape \(2, 4\).*width 3"):
        stack_rows(iter(blocks))


def test_train_stage_reads_only_url_and_label(tmp_path, monkeypatch, sample_frame):
    frame = sample_frame.iloc[:40].assign(source="s", host="h", first_seen="2022-01-01")
    frame.to_parquet(tmp_path / "train.parquet", index=False)
    seen = {}
    real_read = pd.read_parquet

    def spy(path, *args, **kwargs):
        seen.update(kwargs)
        return real_read(path, *args, **kwargs)

    def fake_fit(model, urls, labels):
        seen["urls"], seen["labels"] = list(urls), list(labels)
        return model

    monkeypatch.setattr(train_stage.pd, "read_parquet", spy)
    monkeypatch.setattr(train_stage, "fit", fake_fit)
    monkeypatch.setattr(train_stage, "vocabulary_size", lambda model: 0)
    from conftest import SMALL_TRAIN_PARAMS

    train_stage.run({"train": SMALL_TRAIN_PARAMS}, tmp_path / "train.parquet", tmp_path / "model.joblib")
    assert seen["columns"] == ["url", "label"]
    assert seen["urls"] == frame["url"].tolist() and seen["labels"] == frame["label"].tolist()
    assert (tmp_path / "model.joblib").exists()
