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
# # 07 · Support data set × downstream task (Table 3)
#
# One semi-supervised model per labelled *support* data set, all with the same unlabelled
# pool, each probed on every downstream task; plus a self-supervised baseline
# (`support = none`). The paper's finding: training with labels of the target task beats
# self-supervision on that task by a wide margin, with little loss elsewhere, and musically
# related tasks help each other (pitch ↔ key). This notebook runs one row of the grid; the
# grid is `experiments/table3_support_grid.yaml`.

# %% tags=["parameters"]
scale = "demo"  # smoke | demo | paper (50 k steps)
support = "nsynth_pitch"  # labelled support task, or "none" for the self-supervised baseline
unlabeled = "fma_medium"  # unlabelled pool
p = 1.0  # fraction of the labelled set ever seen
b_s = 0.5  # labelled fraction of each batch
tasks = "nsynth_pitch,nsynth_instrument,giantsteps_key,mtat_top50"  # downstream tasks (the columns)
probe_seeds = "0"  # probe seeds
steps = None  # training steps; None: the scale's
batch_size = None  # clips per batch; None: the scale's
seed = 0  # pretraining seed
runs_dir = "runs/pretrain/07_support_grid"  # pretraining run directories
out_dir = "runs/notebooks/07_support_grid"  # result.json goes here

# %%
from workbench.notebook_steps import pretrain_config, pretrain_probe_write
from workbench.params import validate
from workbench.results import results_table

args = validate(scale=scale, support=support, unlabeled=unlabeled, p=p, b_s=b_s, tasks=tasks,
                probe_seeds=probe_seeds, steps=steps, batch_size=batch_size, seed=seed, runs_dir=runs_dir,
                out_dir=out_dir)
config = pretrain_config(args, method="semisupcon")  # support = none gives the self-supervised simclr baseline
label = "self-supervised" if config.support is None else f"support {config.support}"
print(f"{label}: {config.method}, b_s = {config.b_s}, {config.steps} steps")

# %% [markdown]
# ## Pretrain and probe on every downstream task

# %%
out = pretrain_probe_write(args, "07_support_grid", config, model=label)
results_table(out["results"])
