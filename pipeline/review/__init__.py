"""The PR review: champion (base branch) against challenger (this PR), rendered as one comment.

``python -m pipeline report --base REF`` (``pipeline/commands/report.py``) reads both sides
(``gather``: git and DVC; ``sides``: their splits and scores), compares them (``compare``, with the
paired statistics of ``stats`` and the diffs of params, data, locks and slices in ``diffs``) into
review.json (its shape: ``payloads``; its settings: ``settings``, from params.yaml ``review:``) and
writes ``report.md`` (``render``, one module per group of sections, cells in ``cells``).
``comment`` and ``cml_lock`` run alone in the trusted comment job (standard library + markdown-it).
Imports go one way: review -> store, never back.
"""
