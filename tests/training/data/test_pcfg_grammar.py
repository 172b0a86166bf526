"""Grammar files: cfg3b loads unchanged and matches its own stats; every broken-file problem is reported;
random grammars are deterministic, layered and valid."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from curriculens.errors import CurriculensError
from training.data.pcfg import (
    Grammar,
    GrammarError,
    Rule,
    grammar_from_dict,
    load_grammar,
    random_grammar,
    sample,
    save_grammar,
)

CFG3B = Path(__file__).resolve().parents[3] / "training" / "data" / "pcfg" / "grammars" / "cfg3b.json"
needs_cfg3b = pytest.mark.skipif(not CFG3B.is_file(), reason=f"{CFG3B} not present")


def tiny_dict() -> dict:
    """s -> A B | B A ; A -> a b ; B -> b | a b a (a 3-level grammar with preterminals a, b)."""
    return {
        "name": "tiny",
        "start_symbol": "s",
        "terminals": ["a", "b"],
        "nonterminals": ["s", "A", "B", "a", "b"],
        "rules": [
            {"lhs": "s", "rhs": ["A", "B"], "prob": 0.5},
            {"lhs": "s", "rhs": ["B", "A"], "prob": 0.5},
            {"lhs": "A", "rhs": ["a", "b"], "rhs_is_terminal": [False, False], "prob": 1.0},
            {"lhs": "B", "rhs": ["b", "b"], "rhs_is_terminal": [False, False], "prob": 0.25},
            {"lhs": "B", "rhs": ["a", "b", "a"], "rhs_is_terminal": [False, False, False], "prob": 0.75},
            {"lhs": "a", "rhs": ["a"], "rhs_is_terminal": [True], "prob": 1.0},
            {"lhs": "b", "rhs": ["b"], "rhs_is_terminal": [True], "prob": 1.0},
        ],
        "token_map": {"a": 0, "b": 1, "BOS": 2, "EOS": 3, "PAD": 4, "MASK": 5},
    }


def load_broken(tmp_path: Path, d: dict) -> GrammarError:
    path = tmp_path / "g.json"
    path.write_text(json.dumps(d))
    with pytest.raises(GrammarError) as exc:
        load_grammar(path)
    msg = str(exc.value)
    lines = msg.splitlines()
    assert lines[0] == f"grammar {path} has {len(exc.value.problems)} problem(s):"
    assert lines[1:] == [f"  - {p}" for p in exc.value.problems]
    return exc.value


# ------------------------------------------------------------------------------ cfg3b
@needs_cfg3b
def test_cfg3b_loads_unchanged_and_matches_its_stats():
    raw = json.loads(CFG3B.read_text())
    g = load_grammar(CFG3B)
    stats = raw["stats"]
    assert g.name == "cfg3b" and g.start == "s"
    assert g.terminals == ("a", "b", "c")
    assert len(g.rules) == stats["num_productions_total"] == 34
    non_pre = [r for r in g.rules if not r.is_terminal_rule]
    assert len(non_pre) == stats["num_non_preterminal_productions"] == 31
    hist: dict[str, int] = {}
    for r in non_pre:
        hist[str(len(r.rhs))] = hist.get(str(len(r.rhs)), 0) + 1
    assert hist == stats["rhs_length_histogram_non_preterminal"]
    assert {s: len(g.rules_of(s)) for s in g.nonterminals} == stats["rules_per_nonterminal"]
    assert g.n_levels == stats["num_levels_including_root_and_preterminals"] == 7
    assert {str(k): len(g.level_symbols(k)) for k in range(g.n_levels)} == stats["symbols_per_level"]
    assert {str(k): list(g.level_symbols(k)) for k in range(g.n_levels)} == raw["levels"]
    assert g.strictly_layered is stats["strictly_layered"] is True
    assert g.length_bounds() == (stats["sentence_length_exact_min"], stats["sentence_length_exact_max"]) == (161, 432)
    assert g.expected_length() == pytest.approx(stats["sentence_length_expected_exact"], abs=1e-9)
    # ids: tokens, specials, models' vocab, Allen-Zhu numeric ids
    assert (g.bos_id, g.eos_id, g.pad_id, g.mask_id) == (3, 4, 5, 6)
    assert g.terminal_ids == (0, 1, 2) and g.vocab_size == 8
    assert g.nt_ids["s"] == 22 and g.nt_ids["a"] == 1 and g.nt_ids["f"] == 9
    # the preterminal / terminal name clash is kept apart by the rule flags
    assert g.rules_of("a") == (Rule("a", ("a",), 1.0, (True,)),)
    assert g.is_preterminal("a") and not g.is_preterminal("d")
    assert g.rules_of("f") == (Rule("f", ("c", "b", "a"), 1.0, (False, False, False)),)
    # file order is kept (it matters for seeded sampling)
    assert [(r.lhs, list(r.rhs), r.prob) for r in g.rules] == [(r["lhs"], r["rhs"], r["prob"]) for r in raw["rules"]]


@needs_cfg3b
def test_cfg3b_round_trips_and_flags_are_optional(tmp_path):
    g = load_grammar(CFG3B)
    assert grammar_from_dict(g.to_dict()) == g
    save_grammar(g, tmp_path / "g.json")
    assert load_grammar(tmp_path / "g.json") == g
    # without rhs_is_terminal the flags are inferred: a -> a (self rule) is terminal, d -> c a are NTs
    raw = json.loads(CFG3B.read_text())
    for r in raw["rules"]:
        del r["rhs_is_terminal"]
    assert grammar_from_dict(raw) == g


@needs_cfg3b
def test_encode_decode():
    g = load_grammar(CFG3B)
    assert g.encode("cab").tolist() == [2, 0, 1]
    assert g.encode(["BOS", "a", "MASK"]).tolist() == [3, 0, 6]
    assert g.decode([3, 2, 0, 5]) == ["BOS", "c", "a", "PAD"]
    with pytest.raises(CurriculensError, match="cannot encode 'z'"):
        g.encode("az")
    with pytest.raises(CurriculensError, match="cannot decode id 9"):
        g.decode([9])


# ---------------------------------------------------------------------- broken files
def test_tiny_grammar_is_valid():
    g = grammar_from_dict(tiny_dict())
    assert g.levels == {"s": 0, "A": 1, "B": 1, "a": 2, "b": 2}
    assert g.strictly_layered and g.nt_ids == {"s": 0, "A": 1, "B": 2, "a": 3, "b": 4}
    assert g.vocab_size == 6 and g.length_bounds() == (4, 5)


def test_probabilities_not_summing_to_one(tmp_path):
    d = tiny_dict()
    d["rules"][4]["prob"] = 0.7
    err = load_broken(tmp_path, d)
    assert err.problems == ["probabilities of the rules of 'B' sum to 0.95, not 1"]


def test_unreachable_symbol(tmp_path):
    d = tiny_dict()
    d["nonterminals"].append("C")
    d["rules"].append({"lhs": "C", "rhs": ["a", "a"], "prob": 1.0})
    err = load_broken(tmp_path, d)
    assert err.problems == ["nonterminal 'C' is unreachable from start symbol 's'"]


def test_unreachable_terminal(tmp_path):
    d = tiny_dict()
    d["terminals"].append("c")
    d["token_map"]["c"] = 9
    err = load_broken(tmp_path, d)
    assert err.problems == ["terminal 'c' is unreachable from start symbol 's'"]


def test_unproductive_nonterminal(tmp_path):
    d = tiny_dict()
    d["nonterminals"].append("C")
    d["rules"][1] = {"lhs": "s", "rhs": ["B", "C"], "prob": 0.5}
    d["rules"].append({"lhs": "C", "rhs": ["C", "a"], "prob": 1.0})  # C never terminates
    err = load_broken(tmp_path, d)
    assert err.problems == ["nonterminal 'C' is unproductive (derives no terminal string)"]


def test_duplicate_token_ids(tmp_path):
    d = tiny_dict()
    d["token_map"]["MASK"] = 0
    err = load_broken(tmp_path, d)
    assert err.problems == ["token_map: duplicate id 0 for 'a', 'MASK'"]


def test_token_map_missing_special(tmp_path):
    d = tiny_dict()
    del d["token_map"]["PAD"]
    err = load_broken(tmp_path, d)
    assert err.problems == ["token_map lacks 'PAD'"]


def test_unknown_symbols(tmp_path):
    d = tiny_dict()
    d["rules"][2]["rhs"] = ["a", "x"]
    d["rules"].append({"lhs": "Z", "rhs": ["a"], "prob": 1.0})
    d["rules"][5]["rhs"] = ["q"]  # a -> 'q': flagged terminal but unknown
    err = load_broken(tmp_path, d)
    assert err.problems == [
        "rule 2 (A -> a x): unknown symbol 'x'",
        "rule 5 (a -> q): unknown terminal 'q'",
        "rule 7 (Z -> a): unknown lhs symbol 'Z' (not a nonterminal)",
        "terminal 'a' is unreachable from start symbol 's'",  # only the broken a -> 'q' would produce it
    ]


def test_many_problems_are_all_reported(tmp_path):
    d = tiny_dict()
    d["rules"][0]["prob"] = 0.4  # s sums to 0.9
    d["token_map"]["EOS"] = 1  # clashes with b
    d["nonterminals"].append("C")  # no rules, unreachable
    d["levels"] = {"0": ["s"], "1": ["A"], "2": ["B", "a", "b"]}  # B is at depth 1
    err = load_broken(tmp_path, d)
    assert err.problems == [
        "probabilities of the rules of 's' sum to 0.9, not 1",
        "nonterminal 'C' has no rules",
        "nonterminal 'C' is unreachable from start symbol 's'",
        "token_map: duplicate id 1 for 'b', 'EOS'",
    ]
    # levels are checked once the symbols are consistent
    d = tiny_dict()
    d["levels"] = {"0": ["s"], "1": ["A"], "2": ["B", "a", "b"]}
    assert load_broken(tmp_path, d).problems == ["levels: 'B' is at level 2 but its depth from the start symbol is 1"]


def test_structural_problems(tmp_path):
    d = tiny_dict()
    del d["start_symbol"]
    d["rules"][3]["rhs_is_terminal"] = [False]
    d["rules"][4]["prob"] = "high"
    d["rules"].append({"lhs": "A", "rhs": ["a", "b"], "rhs_is_terminal": [False, False], "prob": 0.0})
    err = load_broken(tmp_path, d)
    assert err.problems == [
        "missing field 'start_symbol'",
        "rule 3 (B -> b b): 'rhs_is_terminal' must be a list of 2 booleans",
        "rule 4 (B -> a b a): 'prob' must be a number",
        "duplicate rule A -> a b [0]",  # no cascade: B's sum and productivity are not judged
    ]


def test_flags_inferred_nonterminal_wins(tmp_path):
    d = tiny_dict()
    for r in d["rules"]:
        r.pop("rhs_is_terminal", None)
    assert grammar_from_dict(d) == grammar_from_dict(tiny_dict())
    # a name in both lists is read as the nonterminal in rules without flags: terminal 'A' stays unused
    d["terminals"].append("A")
    d["token_map"]["A"] = 7
    err = load_broken(tmp_path, d)
    assert err.problems == ["terminal 'A' is unreachable from start symbol 's'"]


def test_malformed_json_and_missing_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"name": "x", "rules": [')
    with pytest.raises(GrammarError) as exc:
        load_grammar(path)
    lines = str(exc.value).splitlines()
    assert lines[0] == f"grammar {path} has 1 problem(s):"
    assert lines[1].startswith("  - malformed JSON: ") and "line 1" in lines[1]
    with pytest.raises(GrammarError) as exc:
        load_grammar(tmp_path / "nope.json")
    assert str(exc.value) == f"grammar file not found: {tmp_path / 'nope.json'} (bundled grammars by name: cfg3b)"
    assert isinstance(exc.value, CurriculensError)
    with pytest.raises(GrammarError, match="top level must be a JSON object"):
        grammar_from_dict([1, 2])  # type: ignore[arg-type]


def test_non_layered_grammar_loads_but_sampler_refuses():
    d = tiny_dict()
    d["rules"][1] = {"lhs": "s", "rhs": ["B", "a"], "prob": 0.5}  # mixes levels 1 and 2
    g = grammar_from_dict(d)
    assert not g.strictly_layered
    with pytest.raises(GrammarError, match="needs a strictly layered grammar"):
        sample(g, 3, 0)


# -------------------------------------------------------------------- random grammars
def test_random_grammar_deterministic_and_seed_dependent():
    a = random_grammar(seed=3)
    assert random_grammar(seed=3) == a and a.to_dict() == random_grammar(seed=3).to_dict()
    assert random_grammar(seed=4).rules != a.rules
    assert isinstance(a, Grammar)


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"n_levels": 2},
        {"n_levels": 7, "symbols_per_level": 3, "rules_per_symbol": 2},
        {"n_levels": 4, "symbols_per_level": 5, "rules_per_symbol": 3, "rhs_lengths": (1, 2, 3), "n_terminals": 4},
        {"n_levels": 3, "symbols_per_level": 2, "rules_per_symbol": 4, "rhs_lengths": (3,), "n_terminals": 6},
    ],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_grammar_structure_and_validity(kw, seed):
    g = random_grammar(seed=seed, **kw)
    n_levels = kw.get("n_levels", 5)
    spl = kw.get("symbols_per_level", 3)
    rps = kw.get("rules_per_symbol", 2)
    n_t = kw.get("n_terminals", 3)
    assert g.n_levels == n_levels and g.strictly_layered
    assert g.level_symbols(0) == ("s",) == (g.start,)
    for lev in range(1, n_levels - 1):
        assert len(g.level_symbols(lev)) == spl
    assert g.level_symbols(n_levels - 1) == g.terminals and len(g.terminals) == n_t
    for nt in g.nonterminals:
        rules = g.rules_of(nt)
        if g.is_preterminal(nt):
            assert rules == (Rule(nt, (nt,), 1.0, (True,)),)
            continue
        assert len(rules) == rps and len({r.rhs for r in rules}) == rps
        assert all(r.prob == pytest.approx(1 / rps) for r in rules)
        assert all(len(r.rhs) in kw.get("rhs_lengths", (2, 3)) for r in rules)
    assert sorted(g.token_map.values()) == list(range(n_t + 4)) and g.vocab_size == n_t + 4
    # valid through the validator after a JSON round trip
    assert grammar_from_dict(json.loads(json.dumps(g.to_dict()))) == g


def test_random_grammar_impossible_parameters():
    with pytest.raises(CurriculensError, match="could not cover"):
        random_grammar(n_levels=3, symbols_per_level=9, rules_per_symbol=1, rhs_lengths=(2,))
    with pytest.raises(CurriculensError, match="n_levels must be >= 2"):
        random_grammar(n_levels=1)


def test_grammar_error_from_dict_names_its_source():
    d = copy.deepcopy(tiny_dict())
    d["rules"][0]["prob"] = 2.0
    with pytest.raises(GrammarError) as exc:
        grammar_from_dict(d, source="mine")
    assert str(exc.value).splitlines()[0] == "grammar mine has 1 problem(s):"
    assert exc.value.problems == ["rule 0 (s -> A B): probability 2.0 outside [0, 1]"]


def test_cfg3b_ships_as_package_data_and_loads_by_name(tmp_path, monkeypatch):
    """The paper's grammar works on a fresh clone: by name from any directory, through the task
    config, the presets and the CLI's --task-set; other grammar files keep working by path."""
    from training.data.pcfg import BUNDLED_GRAMMARS, grammar_path
    from training.plans.pcfg import get_preset
    from training.tasks import build_task

    monkeypatch.chdir(tmp_path)
    assert "cfg3b" in BUNDLED_GRAMMARS
    assert grammar_path("cfg3b") == CFG3B.resolve() or grammar_path("cfg3b").samefile(CFG3B)
    g = load_grammar("cfg3b")
    assert (g.name, g.pad_id, g.mask_id, g.n_levels) == ("cfg3b", 5, 6, 7)
    assert g.to_dict() == load_grammar(CFG3B).to_dict()
    task = build_task({"name": "pcfg", "grammar": "cfg3b", "start_level": 2, "n_eval": 4})
    assert task.grammar.to_dict() == g.to_dict()
    assert get_preset("paper-bert", grammar="cfg3b").task["grammar"] == "cfg3b"  # portable: the name is stored
    # a file path still works, and a file wins over a bundled name
    own = tmp_path / "mine.json"
    save_grammar(g, own)
    assert load_grammar(own).to_dict() == g.to_dict()
    assert get_preset("paper-bert", grammar=str(own)).task["grammar"] == str(own.resolve())
    with pytest.raises(GrammarError, match="bundled grammars by name: cfg3b"):
        load_grammar("cfg3x")


def test_cfg3b_by_name_through_the_cli(tmp_path):
    from curriculens.cli import main

    out = tmp_path / "exp"
    args = [
        "train-teacher",
        "--out",
        str(out),
        "--task",
        "pcfg",
        "--task-set",
        "grammar=cfg3b",
        "--task-set",
        "start_level=3",
        "--task-set",
        "n_eval=4",
        "--steps",
        "2",
        "--save-every",
        "2",
        "--batch-size",
        "2",
        "--device",
        "cpu",
        "--layers",
        "1",
        "--heads",
        "1",
        "--hidden",
        "8",
        "--intermediate",
        "16",
    ]
    assert main(args) == 0
    cfg = json.loads((out / "runs" / "teacher" / "config.json").read_text())
    assert cfg["task"]["grammar"] == "cfg3b" and cfg["model"]["pad_token_id"] == 5
