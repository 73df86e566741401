"""The card's sections, one function each (``<section>_fields(src) -> {field: text}``), grouped in the
card's order: :mod:`.model` (summary, released vs held-out model, model details), :mod:`.data`
(training and evaluation data), :mod:`.metrics` (per member, per source, operating point),
:mod:`.over_time` (future split, backtest, recall by year), :mod:`.robustness` (leave-one-source-out,
slices, limitations). Each returns only its own fields; :mod:`pipeline.release.card.render` joins them."""
