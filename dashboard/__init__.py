"""The curriculens dashboard: see when each curriculum feature appears.

- ``dashboard.app.make_app(runs_dir)``: the Dash app (``curriculens dashboard RUNS_DIR``).
- ``dashboard.data``: read-only loading of experiments, metrics and probe results.
- the teacher's transition window comes from ``curriculens.curves`` (shared with training).
- ``dashboard.figures``: plain figure builders shared by the app and the export.
- ``dashboard.export``: ``export_experiment`` (``curriculens export``).

Nothing is imported or read at import time; import the submodule you need.
"""
