# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · Probing frozen encoders
#
# The encoder is frozen (eval mode: BatchNorm statistics never move) and its projection head
# discarded. Embeddings of every clip are extracted once and cached; a shallow probe (the
# paper's Table 5 settings per task) is trained on them with Adam and early stopping on the
# validation loss, once per probe seed, and evaluated on whole test tracks (chunk embeddings
# averaged per track). Metrics: tagging macro AUROC and AP, classification accuracy, key
# `mir_eval` weighted score, emotion R².

# %% tags=["parameters"]
scale = "demo"  # smoke | demo | paper: the probe budget (chunks per track, epochs)
checkpoints = ""  # checkpoint files, "a.ckpt,b.ckpt"; "": the newest finished run under runs_dir
models = ""  # a name per checkpoint, "ssl,semisupcon"; "": the run folder names
tasks = "nsynth_pitch,nsynth_instrument,giantsteps_key,mtat_top50"  # downstream tasks
probe_seeds = "0,1,2"  # one probe per seed; the table shows mean ± std over seeds
fraction = 1.0  # fraction of labelled probe training tracks, (0, 1]
aggregation = "embedding"  # how chunk outputs become a track's: embedding | logits | probabilities
runs_dir = "runs/pretrain"  # searched for the newest finished run when checkpoints is empty
out_dir = "runs/notebooks/03_probe"  # results.json / results.csv / result.json go here

# %%
from pathlib import Path

from workbench import figures
from workbench.notebook_steps import latest_checkpoint, probe_checkpoint, write_result
from workbench.params import ParameterError, validate
from workbench.results import results_table, write_results

args = validate(scale=scale, checkpoints=checkpoints, models=models, tasks=tasks, probe_seeds=probe_seeds,
                fraction=fraction, aggregation=aggregation, runs_dir=runs_dir, out_dir=out_dir)
ckpts = args.checkpoints or [latest_checkpoint(args.runs_dir)]
names = args.models or [Path(c).parents[1].name if Path(c).name == "last.ckpt" else Path(c).stem for c in ckpts]
if len(names) != len(ckpts):
    raise ParameterError(f"parameter models={models!r}: give one name per checkpoint ({len(ckpts)})")
for name, ckpt in zip(names, ckpts):
    print(f"{name}: {ckpt}")

# %% [markdown]
# ## Probe every checkpoint on every task

# %%
rows = []
for name, ckpt in zip(names, ckpts):
    rows += probe_checkpoint(ckpt, args.tasks, scale=args.scale, seeds=args.probe_seeds, model=name,
                             aggregation=args.aggregation, fraction=args.fraction)
write_results(rows, args.out_dir / "results.json", args.out_dir / "results.csv")
results_table(rows)

# %% [markdown]
# ## Each task's primary metric (mean ± std over probe seeds)

# %%
figures.show(figures.probe_bar_chart(rows))

# %%
print(write_result(args.out_dir, "03_probe", args, rows, checkpoints=[str(c) for c in ckpts]))
