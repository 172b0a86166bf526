"""Probabilistic context-free grammars (cfg3 family): grammar files, generator, sampler, parser.

Pure Python/numpy. The JSON format: ``docs/formats.md``.
"""

from .generate import random_grammar
from .grammar import (
    BUNDLED_GRAMMARS,
    SPECIAL_TOKENS,
    Grammar,
    GrammarError,
    LayeredTables,
    Rule,
    grammar_from_dict,
    grammar_path,
    layered_tables,
    load_grammar,
    save_grammar,
)
from .parser import accepts, count_parses, cyk_reference, inside_logprob, masked_posteriors, parse
from .sampler import (
    Corpus,
    Derivation,
    Parse,
    corpus_from_derivations,
    derivation_rules,
    official_end_flags,
    sample,
    sample_reference,
    spans,
)

__all__ = [
    "BUNDLED_GRAMMARS",
    "SPECIAL_TOKENS",
    "Corpus",
    "Derivation",
    "Grammar",
    "GrammarError",
    "LayeredTables",
    "Parse",
    "Rule",
    "accepts",
    "corpus_from_derivations",
    "count_parses",
    "derivation_rules",
    "official_end_flags",
    "cyk_reference",
    "grammar_from_dict",
    "grammar_path",
    "inside_logprob",
    "layered_tables",
    "load_grammar",
    "masked_posteriors",
    "parse",
    "random_grammar",
    "sample",
    "sample_reference",
    "save_grammar",
    "spans",
]
