"""Label-free production monitoring of the phishing-URL detector.

The product logs every prediction; labels almost never come back. What can be
watched without them is the share of URLs flagged as phishing (the
classification ratio) and the score distribution, per time window and per
model version. Modules, one responsibility each, listed top layer first: a module
imports only modules of the layers below its own, and modules of one layer never
import each other (an import-linter "layers" contract, highest first):

* ``render``         monitor.json, report.md, ratio.png, scores.png, rejects.csv
* ``simulate``       (same layer) a realistic prediction log replayed through the client's ``Detector``
* ``fetch``          (same layer) the DVC command that brings the configured log into place
* ``tracking_issue`` (same layer) which open issue the alert job may edit; standard library only
* ``analysis``       references, comparisons, alert decisions
* ``result``         the shape of monitor.json: the typed payloads analysis builds and render reads
* ``logs``           read a prediction log (file or directory) on an engine: counts, rejects by reason
* ``thresholds``     (same layer) each version's threshold from its verified release (rows without a verdict)
* ``engine_duckdb``  register the inputs and run the shared SQL, embedded
* ``engine_spark``   (same layer) the same on Spark (pyspark, an optional extra, imported lazily)
* ``staging``        text logs (and Parquet with undecodable bytes) streamed into Parquet, under the caps
* ``stats``          (same layer) pure statistics (Wilson, z, CMH, PSI, KS, BH), also from score histograms
* ``sql``            the one SQL definition (validation, windows, aggregation) both engines run
* ``windows``        window lengths, starts and names (a Monday origin), the reference range
* ``config``         (same layer) the ``monitor:`` section of params.yaml, the only home of its values

The commands (``monitor``, ``simulate-traffic``, ``fetch-logs``) live in ``pipeline/commands/``.
Nothing is imported here: ``python3 -m pipeline.monitoring.tracking_issue`` runs with nothing installed.
"""
