"""A small English corpus that a Python package installs: the ChatterBot dialog corpus.

``write_packaged_corpus(path)`` writes the English conversations of PyPI ``chatterbot-corpus``
(installed with the ``test`` extra; read from its YAML files, no network) as a JSONL corpus for
the ``text`` task: one conversation per line, its turns joined by spaces, key ``text``. About
240 kB of short, repetitive question / answer text, which a 2-layer BERT leaves the unigram
plateau on within CPU minutes (docs/import.md).
"""

from __future__ import annotations

import json
from pathlib import Path

from curriculens.errors import CurriculensError
from curriculens.io import atomic_write_text

PACKAGE = "chatterbot_corpus"


def packaged_conversations(language: str = "english") -> list[str]:
    """The conversations of the installed corpus, each as one string (files in name order)."""
    try:
        import chatterbot_corpus
        import yaml
    except ImportError:
        raise CurriculensError(
            "the packaged corpus needs `pip install chatterbot-corpus pyyaml` (the test extra)"
        ) from None
    root = Path(chatterbot_corpus.__file__).parent / "data" / language
    files = sorted(root.glob("*.yml"))
    if not files:
        raise CurriculensError(f"no {language} files in the installed chatterbot-corpus ({root})")
    out = []
    for f in files:
        data = yaml.safe_load(f.read_text(encoding="utf-8")) or {}
        for conv in data.get("conversations") or []:
            turns = [" ".join(str(t).split()) for t in (conv or []) if isinstance(t, (str, int, float))]
            text = " ".join(t for t in turns if t)
            if text:
                out.append(text)
    return out


def write_packaged_corpus(path: Path | str, language: str = "english") -> Path:
    """Write the packaged conversations to ``path`` as JSONL (replaced atomically); returns it."""
    path = Path(path)
    rows = "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in packaged_conversations(language))
    atomic_write_text(path, rows)
    return path
