"""curriculens: progressive distillation and the implicit curriculum.

The library lives in the top-level packages ``models``, ``training``, ``probes`` and
``dashboard``; this package holds what they share (constants, file I/O, errors, seeding) and the
``curriculens`` command line.
"""

__version__ = "0.1.0"
