"""Foreign checkpoints: trajectories trained elsewhere, fetched and imported as runs.

- ``fetch``: ``curriculens fetch``, chosen revisions of a hub model into a local hub cache.
- ``sources``: find the checkpoints of a foreign trajectory on disk (reads, never writes).
- ``revisions``: revision SPECs (name, step, range, log spacing) for fetch and import.
- ``importer``: ``curriculens import``, a foreign trajectory becomes one run of an experiment.
- ``fixtures``: fabricated foreign trajectories on disk, for tests, benchmarks and the
  quickstart (and the text task's word-level tokenizer); ``tokenizers`` is imported lazily.

Nothing is imported here.
"""
