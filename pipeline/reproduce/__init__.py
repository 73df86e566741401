"""``python -m pipeline reproduce``: re-train a committed revision from scratch and measure how far the
result is from the outputs that were reviewed and released.

The committed state is cloned into a scratch directory (the user's work tree, index and DVC cache
are only read), the raw data is pulled there, and ``dvc repro --force --no-run-cache`` re-runs
every stage with an empty cache. :mod:`.compare` then measures the difference with the parity
gate's terms (pure), :mod:`.render` words it, :mod:`.scratch` and :mod:`.retrain` do the I/O
(``pipeline/commands/reproduce.py`` is the command).
"""
