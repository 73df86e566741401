"""The release notes: the card's summary, why this version, where the outputs came from, the metric
diff against the previous release, how to use the attached client, and how to verify the assets."""
from __future__ import annotations

from phishing_url_detector.releases import SUMS_FILE, bundle_asset_name
from pipeline.formatting import num, signed
from pipeline.release.card.format import interval, metric_keys, metric_label
from pipeline.release.card.render import section
from pipeline.release.card.sources import Doc, dig, latest_year
from pipeline.release.inputs import PreviousRelease
from pipeline.release.origin import Origin
from pipeline.release.versioning import BUMP_INITIAL, ReleaseDecision
from pipeline.release.wheel import CheckedWheel

NOTES_METRICS = ("roc_auc", "pr_auc", "precision", "recall", "f1", "fpr")


def release_notes(card: str, decision: ReleaseDecision, current_metrics: Doc,
                  previous: PreviousRelease | None, onnx_name: str, wheel: CheckedWheel, origin: Origin) -> str:
    parts = [section(card, "Summary"), "",
             f"**Why {decision.tag}:** {decision.reason}"
             + ("." if decision.bump == BUMP_INITIAL else f" ({decision.bump} version bump)."), "",
             origin.sentence(), "",
             metric_diff(current_metrics, previous.metrics if previous else None,
                         previous.tag if previous else None, decision.tag), "",
             *client_notes(decision.tag, onnx_name, wheel), "",
             "### Verify", "",
             "```sh",
             "sha256sum -c SHA256SUMS   # every asset, the wheel included",
             "# build provenance, offline with the attached bundles (what the client checks before loading)",
             *(f"gh attestation verify {name} --repo OWNER/NAME --bundle {bundle_asset_name(name)} "
               "--signer-workflow OWNER/NAME/.github/workflows/release.yml --source-ref refs/heads/main"
               for name in (onnx_name, SUMS_FILE)),
             f"gh attestation verify {wheel.name} --repo OWNER/NAME",
             "```", "",
             "The full model card is the `MODEL_CARD.md` asset."]
    return "\n".join(parts) + "\n"


def client_notes(tag: str, onnx_name: str, wheel: CheckedWheel) -> list[str]:
    """The notes' "Use it" section: the attached client wheel, how to install it, what it was tested with."""
    deps = ", ".join(f"`{d}`" for d in wheel.installed if not d.lower().startswith("phishing-url-detector=="))
    return ["### Use it", "",
            (f"`{wheel.name}` is the client this release was tested with: before it was attached it was "
             f"installed alone into a fresh virtual environment (with only its dependencies: {deps}), where "
             f"its `phishing-url-detector score` verified `{onnx_name}` and scored URLs with it."), "",
            "```sh",
            (f"pip install {wheel.name}   # or: pip install https://github.com/OWNER/NAME/releases/download/"
             f"{tag}/{wheel.name}"),
            (f"phishing-url-detector score --repo OWNER/NAME --model {onnx_name} http://example.com/"
             "   # verifies (provenance too), then scores"),
            "```", "",
            "```python",
            "from phishing_url_detector import Detector",
            f'detector = Detector.from_release("OWNER/NAME", "{tag}")   # fetch, verify, cache, load',
            'print(detector.score(["http://example.com/login"])[0].verdict)',
            "```"]


def metric_diff(current: Doc, previous: Doc | None, previous_tag: str | None, tag: str) -> str:
    """The notes' metric table: this release beside the previous one, test split unless noted."""
    ens, prev = current["ensemble"], (previous or {}).get("ensemble", {})
    rows = []
    keys = [k for k in metric_keys(ens) if k in NOTES_METRICS or k.startswith("tpr_at_fpr_")]
    for k in keys:
        old = prev.get(k, {}).get("value") if isinstance(prev.get(k), dict) else None
        rows.append(_metric_row(metric_label(k), old, ens[k]["value"], interval(ens[k])))
    oos, prev_oos = current.get("out_of_source", {}), (previous or {}).get("out_of_source", {})
    if "recall" in oos:
        rows.append(_metric_row("out-of-source recall (PhishTank)", prev_oos.get("recall"), oos["recall"]))
        year = latest_year(oos["recall_by_year"])
        if year is not None:
            old = dig(prev_oos, "recall_by_year", year, "recall")
            rows.append(_metric_row(f"out-of-source recall, {year}", old, oos["recall_by_year"][year]["recall"]))
    newest, prev_newest = _newest(current), _newest(previous or {})
    if newest and newest.get("recall") is not None:
        rows.append(_metric_row(f"recall on the newest {len(newest['months'])} months (future split)",
                                (prev_newest or {}).get("recall"), newest["recall"]))
    rows.append(_metric_row("threshold", (previous or {}).get("threshold"), current["threshold"], digits=6))
    head = f"| metric | {previous_tag or 'previous'} | {tag} | change | 95% interval ({tag}) |"
    title = (f"### Metrics against {previous_tag}" if previous_tag
             else "### Metrics (first release: nothing to compare with)")
    return "\n".join([title, "", "Test split unless noted, at each release's own threshold.", "", head,
                      "|---|---:|---:|---:|---:|", *rows])


def _newest(metrics: Doc) -> Doc | None:
    """The future split's newest-months headline (``future.newest_<N>_months``), if the metrics have one."""
    return next((v for k, v in metrics.get("future", {}).items() if k.startswith("newest_")), None)


def _metric_row(label: str, old: float | None, new: float, ci: str = "", digits: int = 4) -> str:
    """A row of the metric diff: the previous release's value, this one's, the change, this one's interval."""
    if old is None:
        return f"| {label} | - | {num(new, digits)} | - | {ci} |"
    return f"| {label} | {num(old, digits)} | {num(new, digits)} | {signed(new - old, digits)} | {ci} |"
