"""The card's assembly: every section's fields into model_card/template.md, and the version line.

:func:`build_context` takes the union of the section functions' fields (:data:`CONTEXT_PARTS`, in
the card's order); :func:`render` fills the template, refusing a field without a value or a value
without a field. The card DVC renders says "Version: assigned at release"; :func:`stamp_version`
names the release in the copy the release ships, and :func:`unstamp_version` undoes it.
"""
from __future__ import annotations

import re
import string
from pathlib import Path

from pipeline import paths
from pipeline.release.card.sections import data, metrics, model, over_time, robustness
from pipeline.release.card.sources import Sources, load_sources

TEMPLATE = paths.CARD_TEMPLATE
CARD = paths.CARD

VERSION_PREFIX = "- **Version:** "
UNRELEASED = "assigned at release"
_VERSION_LINE = re.compile(r"^- \*\*Version:\*\* .*$", re.MULTILINE)

# The card's sections, one function each, returning its own ``$fields``.
CONTEXT_PARTS = (model.summary_fields, model.headline_fields, model.released_fields, model.model_fields,
                 model.contract_fields, data.training_data_fields, data.evaluation_data_fields,
                 metrics.member_fields, metrics.per_source_fields, metrics.operating_point_fields,
                 over_time.future_fields, over_time.future_table_fields, over_time.backtest_fields,
                 robustness.loso_fields, robustness.slice_fields, over_time.year_fields,
                 robustness.limitation_fields)


class CardTemplate(string.Template):
    """``$name`` / ``${name}`` fields; a missing or unused field is an error (see :func:`render`)."""


def build_context(src: Sources) -> dict[str, str]:
    """Every ``$field`` of the template, as text: the union of the section functions' fields."""
    ctx: dict[str, str] = {}
    for part in CONTEXT_PARTS:
        fields = part(src)
        clash = ctx.keys() & fields.keys()
        if clash:
            raise ValueError(f"model card: {part.__name__} sets fields another section already set: {sorted(clash)}")
        ctx.update(fields)
    return ctx


def render(template_text: str, context: dict[str, str], wrap: tuple[str, str] | None = None) -> str:
    """Fill the template. ``wrap`` marks every substituted value (tests use it to find them)."""
    template = CardTemplate(template_text)
    if not template.is_valid():
        raise ValueError("model card template: a '$' is neither a field nor '$$'")
    fields = set(template.get_identifiers())
    missing, unused = fields - set(context), set(context) - fields
    if missing or unused:
        raise ValueError(f"model card template: fields without a value {sorted(missing)}, "
                         f"values without a field {sorted(unused)}")
    values = {k: f"{wrap[0]}{v}{wrap[1]}" if wrap else v for k, v in context.items()}
    text = template.substitute(values)
    if len(_VERSION_LINE.findall(text)) != 1:
        raise ValueError(f"model card template must have exactly one '{VERSION_PREFIX}' line")
    return text.rstrip("\n") + "\n"


def render_card(root: Path = Path("."), template: Path | None = None,
                wrap: tuple[str, str] | None = None) -> str:
    """The card the outputs under ``root`` render to (``template``: another template, for tests)."""
    root = Path(root)
    template_text = (template or root / TEMPLATE).read_text(encoding="utf-8")
    return render(template_text, build_context(load_sources(root)), wrap)


def stamp_version(card: str, version: str, tag: str, commit: str) -> str:
    """The shipped card: the one version line names the release, the tag and the commit."""
    line = f"{VERSION_PREFIX}{version} (release tag `{tag}`, git commit `{commit}`)"
    text, n = _VERSION_LINE.subn(lambda _: line, card, count=1)
    if n != 1:
        raise ValueError(f"model card has no '{VERSION_PREFIX}' line to stamp")
    return text


def unstamp_version(card: str) -> str:
    """Undo :func:`stamp_version` (identity on an unstamped card)."""
    return _VERSION_LINE.sub(lambda _: f"{VERSION_PREFIX}{UNRELEASED}", card, count=1)


def section(card: str, title: str) -> str:
    """The body of ``## title`` (up to the next ``## ``), stripped."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", card, re.MULTILINE | re.DOTALL)
    if not match:
        raise ValueError(f"model card has no '## {title}' section")
    return match.group(1).strip()
