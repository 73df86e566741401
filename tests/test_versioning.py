"""The release version is derived, never chosen: these pin the derivation."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.release.versioning import (
    BUMP_INITIAL,
    BUMP_MAJOR,
    BUMP_MINOR,
    BUMP_PATCH,
    ReleaseFacts,
    Version,
    latest_version,
    next_release,
    parse_tag,
    release_text_digest,
)

OLD = ReleaseFacts(contract_digest="c" * 64, model_sha256="m" * 64, text_digest="t" * 64)


def facts(**changes) -> ReleaseFacts:
    return ReleaseFacts(**{**OLD.__dict__, **changes})


@pytest.mark.parametrize("tag, expected", [
    ("model-v1.2.3", Version(1, 2, 3)),
    ("model-v0.0.0", Version(0, 0, 0)),
    ("model-v10.20.30", Version(10, 20, 30)),
])
def test_parse_tag_accepts_model_tags(tag, expected):
    assert parse_tag(tag) == expected
    assert expected.tag == tag


@pytest.mark.parametrize("tag", [
    "v1.2.3", "model-1.2.3", "model-v1.2", "model-v1.2.3.4", "model-v01.2.3", "model-v1.02.3",
    "model-v1.2.3-rc1", "model-v1.2.3+build", "app-v9.9.9", "model-vx.y.z", "", "latest",
    "refs/tags/model-v1.2.3", "model-v1.2.3\nmodel-v9.0.0",
])
def test_parse_tag_ignores_foreign_tags(tag):
    assert parse_tag(tag) is None


def test_latest_is_semantic_not_lexicographic():
    tags = ["model-v1.9.0", "model-v1.10.0", "model-v1.2.11", "model-v1.2.9"]
    assert latest_version(tags) == Version(1, 10, 0)
    assert latest_version(["model-v1.0.9", "model-v1.0.10"]) == Version(1, 0, 10)
    assert latest_version(["model-v9.9.9", "model-v10.0.0"]) == Version(10, 0, 0)


def test_latest_ignores_junk_tags():
    tags = ["v99.0.0", "model-v2.0.0-rc1", "nightly", "model-v1.3.0", "model-v01.9.0", "model-v1.2.0"]
    assert latest_version(tags) == Version(1, 3, 0)
    assert latest_version(["v1.0.0", "junk"]) is None
    assert latest_version([]) is None


@given(st.lists(st.tuples(*[st.integers(0, 200)] * 3), min_size=1))
def test_latest_matches_numeric_max(triples):
    tags = [f"model-v{a}.{b}.{c}" for a, b, c in triples]
    assert latest_version(tags) == Version(*max(triples))


def test_first_release_uses_contract_major():
    decision = next_release([], None, OLD, contract_major=1)
    assert (decision.version, decision.tag, decision.bump) == ("1.0.0", "model-v1.0.0", BUMP_INITIAL)
    assert decision.previous_tag is None
    assert "first release" in decision.reason
    assert next_release(["v3.0.0", "other"], None, OLD, contract_major=2).version == "2.0.0"


def test_contract_change_is_major():
    decision = next_release(["model-v1.4.2"], OLD, facts(contract_digest="d" * 64, model_sha256="n" * 64),
                            contract_major=2)
    assert (decision.version, decision.bump, decision.previous_tag) == ("2.0.0", BUMP_MAJOR, "model-v1.4.2")
    assert "contract" in decision.reason


def test_model_change_is_minor():
    decision = next_release(["model-v1.9.3", "model-v1.10.1"], OLD, facts(model_sha256="n" * 64,
                                                                         text_digest="u" * 64),
                            contract_major=1)
    assert (decision.version, decision.tag, decision.bump) == ("1.11.0", "model-v1.11.0", BUMP_MINOR)
    assert "model bytes" in decision.reason and "model-v1.10.1" in decision.reason


def test_text_only_change_is_patch():
    decision = next_release(["model-v1.2.0", "model-v1.2.1"], OLD, facts(text_digest="u" * 64),
                            contract_major=1)
    assert (decision.version, decision.bump) == ("1.2.2", BUMP_PATCH)
    assert "card" in decision.reason


def test_nothing_changed_is_no_release():
    assert next_release(["model-v1.2.0"], OLD, facts(), contract_major=1) is None


def test_contract_change_without_contract_major_bump_is_refused():
    with pytest.raises(ValueError, match="CONTRACT_MAJOR is still 1"):
        next_release(["model-v1.0.0"], OLD, facts(contract_digest="d" * 64), contract_major=1)


def test_contract_major_bump_without_contract_change_is_refused():
    with pytest.raises(ValueError, match="did not change"):
        next_release(["model-v1.0.0"], OLD, facts(model_sha256="n" * 64), contract_major=2)


def test_inconsistent_inputs_are_refused():
    with pytest.raises(ValueError, match="no facts"):
        next_release(["model-v1.0.0"], None, OLD, contract_major=1)
    with pytest.raises(ValueError, match="no model-vX.Y.Z tag"):
        next_release(["v1.0.0"], OLD, OLD, contract_major=1)


def test_text_digest_ignores_release_naming_fields_only():
    manifest = {"version": "1.2.0", "threshold": 0.5,
                "model": {"file": "phishing-url-detector-1.2.0.onnx", "sha256": "a" * 64}}
    local = {"threshold": 0.5, "model": {"sha256": "a" * 64, "file": "phishing-url-detector.onnx"}}
    base = release_text_digest(card="# card", manifest=manifest, metrics="{}")
    assert base == release_text_digest(card="# card", manifest=local, metrics="{}")
    assert base != release_text_digest(card="# card!", manifest=manifest, metrics="{}")
    assert base != release_text_digest(card="# card", manifest={**manifest, "threshold": 0.6}, metrics="{}")
    assert base != release_text_digest(card="# card", manifest=manifest, metrics='{"auc": 1}')
    # parts are length-prefixed: moving text between card and metrics is a change
    assert release_text_digest(card="ab", manifest={}, metrics="c") != \
        release_text_digest(card="a", manifest={}, metrics="bc")
