"""Label-free production monitoring of the phishing-URL detector.

The product logs every prediction; labels almost never come back. What can be
watched without them is the share of URLs flagged as phishing (the
classification ratio) and the score distribution, per time window and per
model version. Modules, one responsibility each:

* ``logs``      read a prediction log (file or directory) on an engine: counts, rejects by reason
* ``staging``   text logs (and Parquet with undecodable bytes) streamed into Parquet, under the caps
* ``sql``       the one SQL definition (validation, windows, aggregation) both engines run
* ``engine_duckdb``, ``engine_spark``  register the inputs and run that SQL (embedded / cluster)
* ``thresholds``  each version's threshold from its verified release (for rows without a verdict)
* ``stats``     pure statistics (Wilson, two-proportion z, CMH, PSI, KS, BH), also from score histograms
* ``analysis``  windowing, reference selection, comparisons, alert decisions
* ``config``    the ``monitor:`` section of params.yaml
* ``render``    monitor.json, report.md, ratio.png, scores.png
* ``simulate``  a realistic prediction log replayed through the client's ``Detector``
* ``*_command`` the thin ``python -m pipeline`` sub-commands
"""
