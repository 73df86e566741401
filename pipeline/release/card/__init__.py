"""The model card: rendered from the pipeline's own outputs (stage `model-card`).

Every number in the card is read from metrics.json, reports/*.json,
dist/manifest.json or params.yaml at render time, or computed from them here
(e.g. the backtest's recall lost per month of model age); none is typed into
the template (model_card/template.md, a ``string.Template``: ``$name`` fields,
``$$`` for a literal dollar). Static facts about the data sources (origin,
licence, collection years) are copied from the data datasheet into the template.

- :mod:`.sources` reads the outputs (:class:`.sources.Sources`) and looks values up in them;
- :mod:`.format` holds the card's own ways of writing values (metric labels, intervals,
  table alignment); the numbers themselves go through :mod:`pipeline.formatting`;
- :mod:`.sections` has one small function per card section, each returning only its own ``$fields``;
- :mod:`.render` fills the template with the union of those fields, and stamps the version.

Tables are rendered by :func:`pipeline.common.md_table`, and every string from the data
that lands in a table cell goes through :func:`pipeline.common.md_cell`. A value the
outputs do not hold (a small sample lacks some sources, months, slices or classes)
renders as :data:`pipeline.formatting.MISSING`.

The card rendered by DVC carries no version: the version is assigned when a
release is cut, from what changed since the previous release. The release
builder (``python -m pipeline release``) stamps it into the copy it ships by
rewriting the single ``- **Version:** ...`` line (:func:`.render.stamp_version`);
:func:`.render.unstamp_version` undoes that, so two cards compare equal exactly when
their content other than the version is equal (the PATCH decision).
"""
