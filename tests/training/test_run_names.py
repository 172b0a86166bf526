"""Run names: the two-shot name says both the teacher checkpoint and T (student steps)."""

from curriculens import constants as C
from training.experiment import student_run_name, two_shot_label


def test_two_shot_names_both_quantities(tmp_path):
    assert student_run_name("two-shot", 0, 5500, two_shot_T=2000) == "two-shot-ckpt5500-T2000-s0"
    assert student_run_name("two-shot", 1, 5500, "-w100", two_shot_T=2000) == "two-shot-ckpt5500-T2000-w100-s1"
    assert student_run_name("progressive", 2) == "progressive-s2"
    assert two_shot_label(5500, 2000) == "two-shot (teacher ckpt 5,500, first 2,000 steps)"


def test_an_experiment_made_with_the_old_name_keeps_its_run(tmp_path):
    (tmp_path / C.RUNS_DIR / "two-shot-T5500-s0").mkdir(parents=True)  # T meant the checkpoint then
    assert student_run_name("two-shot", 0, 5500, two_shot_T=2000, exp_dir=tmp_path) == "two-shot-T5500-s0"
    assert student_run_name("two-shot", 1, 5500, two_shot_T=2000, exp_dir=tmp_path) == "two-shot-ckpt5500-T2000-s1"
    (tmp_path / C.RUNS_DIR / "two-shot-ckpt5500-T2000-s0").mkdir()
    assert student_run_name("two-shot", 0, 5500, two_shot_T=2000, exp_dir=tmp_path) == "two-shot-ckpt5500-T2000-s0"
