"""The PR review: champion (base branch) against challenger (this PR), rendered as one comment.

``python -m pipeline report --base REF`` gathers both revisions' DVC outputs
(``gather``), compares them with paired statistics (``stats``), diffs params,
data, locks and slices (``diffs``) and writes ``report.md`` (``render``).
Everything except ``gather``/``command`` is pure and unit-tested.
"""
