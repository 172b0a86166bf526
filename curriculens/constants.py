"""File names, directory names and defaults shared by every package.

Change a layout here, never by spelling a literal elsewhere.
"""

# --- experiment directory -------------------------------------------------------------
EXPERIMENT_FILE = "experiment.json"  # EXP/experiment.json: task and what the experiment holds
RUNS_DIR = "runs"  # EXP/runs/<run name>/
RESULTS_DB = "results.sqlite"  # EXP/results.sqlite: the probe results database
FAILED_FILE = "failed.jsonl"  # EXP/failed.jsonl: probe units that raised
PROBE_CONFIG_FILE = "probe_config.json"  # EXP/probe_config.json: the SweepConfig of the last sweep
RESULTS_LOCK_FILE = ".results.sqlite.lock"  # EXP/.results.sqlite.lock: held by the one probe writer

# --- one run --------------------------------------------------------------------------
RUN_CONFIG_FILE = "config.json"  # the fully resolved RunConfig
METRICS_FILE = "metrics.jsonl"  # one JSON object per evaluation
TOKENS_KEY = (
    "tokens"  # training tokens seen at a step (imported runs whose source states them): metrics rows, meta.json
)
CHECKPOINTS_DIR = "checkpoints"
DONE_FILE = "done.json"  # written last: the run finished
RUN_LOCKS_DIR = ".locks"  # EXP/.locks/<run>.lock, outside the run directory (so replacing the directory keeps
# it): held by the one process writing the run (curriculens.lock; curriculens.layout.run_lock_path)
OLD_RUN_LOCK_FILE = ".lock"  # <run>/.lock: where older versions kept it (ignored as run content)

# --- one checkpoint -------------------------------------------------------------------
CKPT_PREFIX = "step_"
CKPT_STEP_DIGITS = 9  # step_000001000
MAX_STEP = 2**63 - 1  # the largest step a checkpoint may have (an SQLite INTEGER)
WEIGHTS_FILE = "model.safetensors"
MODEL_CONFIG_FILE = "config.json"
META_FILE = "meta.json"
OPTIM_WEIGHTS_FILE = "optim.safetensors"  # optimizer tensors (resume only)
OPTIM_STATE_FILE = "optim.json"  # optimizer scalars and param groups (resume only)

# --- roles and methods ----------------------------------------------------------------
ROLE_TEACHER = "teacher"
ROLE_STUDENT = "student"
METHOD_TEACHER = "teacher"  # the method column of teacher runs
METHOD_CE = "ce"  # cross-entropy on the labels only (the baseline)
METHOD_ONE_SHOT = "one-shot"  # distil the final teacher
METHOD_PROGRESSIVE = "progressive"  # distil the teacher's checkpoints in order
METHOD_TWO_SHOT = "two-shot"  # one middle checkpoint, then the final teacher
METHOD_CURRICULUM_EXTRACTION = "curriculum-extraction"  # the final teacher's hidden layer first, then its outputs
PAPER_METHODS = (METHOD_CE, METHOD_ONE_SHOT, METHOD_PROGRESSIVE, METHOD_TWO_SHOT)  # the paper's four
METHODS = PAPER_METHODS + (METHOD_CURRICULUM_EXTRACTION,)  # every student method the trainer knows
TARGET_ACC = 0.95  # a student's speed: its steps to this held-out accuracy (demo, recommend, sweep figure)
# the tasks whose students are read by steps to TARGET_ACC (the demo's closing lines, the dashboard's
# teacher-below-target line); a task not listed is read by final accuracy (its teachers stay far below any fixed one)
TASK_TARGETS = {"parity": TARGET_ACC}

# --- devices and optimizers -----------------------------------------------------------
DEVICE_AUTO = "auto"  # cuda when available, else cpu (curriculens.device.resolve_device)
DEVICES = (DEVICE_AUTO, "cpu", "cuda")  # --device
OPTIM_SGD, OPTIM_ADAM, OPTIM_ADAMW = "sgd", "adam", "adamw"
OPTIMIZERS = (OPTIM_SGD, OPTIM_ADAM, OPTIM_ADAMW)
SCHEDULE_CONSTANT, SCHEDULE_COSINE = "constant", "cosine"
LR_SCHEDULES = (SCHEDULE_CONSTANT, SCHEDULE_COSINE)

# --- probes ---------------------------------------------------------------------------
# examples per probe forward: a width-8000 layer's [256, 8000] float32 block (8 MiB) stays in cache;
# at 1024 the same forwards took about 2x as long (docs/probe-sweep.md). Results do not depend on it.
DEFAULT_PROBE_BATCH = 256
# one streaming MLP forward's hidden layer holds at most this many floats (256 rows x 8192 wide):
# wider batches are cut into row chunks, narrower models take more rows (each row's numbers are
# the same either way). The parity teacher's 1024-row evaluation batch runs as 4 x 256 rows.
# (64-row chunks were faster on one checkpoint in isolation but slower inside the grid, where
# each chunk's GEMM packs the first layer again: docs/grids.md, "Second round".)
FORWARD_HIDDEN_FLOATS = DEFAULT_PROBE_BATCH * 8192
# hidden units per block of a two-class MLP's margin (``ParityMLP.class1_margin``): a 256-row
# block of 2000 float32 units (2 MB) stays in cache between its GEMM, ReLU and matrix-vector
# product. Changing it changes the margin's rounding (the sums are grouped by block).
MARGIN_HIDDEN_UNITS = 2000
