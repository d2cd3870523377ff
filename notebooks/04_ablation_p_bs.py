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
# # 04 · Ablation: p and b_s (Table 6, Figure 2)
#
# **p** is the fraction of the labelled training set the model may ever see (applied once,
# as a seeded subset written next to the run); **b_s** is the fraction of each batch drawn
# from it. The paper varies b_s at p = 1 and p at b_s = 0.5 (Table 6, appendix 8.3.1), and
# both together (Table 2, Figure 2), with MTAT as support and downstream task and FMA as
# the unlabelled pool. This notebook pretrains and probes **one** configuration; the grid
# lives in `experiments/table6_p_bs.yaml`
# (`python -m workbench experiments run experiments/table6_p_bs.yaml --scale demo`), and
# `10_figures` draws it beside the paper's numbers.

# %% tags=["parameters"]
scale = "demo"  # smoke | demo | paper (50 k steps for ablations)
support = "mtat_top50"  # labelled support task
unlabeled = "fma_medium"  # unlabelled pool
p = 1.0  # fraction of the labelled training set ever seen, (0, 1]
b_s = 0.5  # fraction of each batch from the labelled set, [0, 1]
tasks = "mtat_top50"  # downstream tasks to probe
probe_seeds = "0"  # probe seeds
steps = None  # training steps; None: the scale's
batch_size = None  # clips per batch; None: the scale's
seed = 0  # pretraining seed
runs_dir = "runs/pretrain/04_ablation_p_bs"  # pretraining run directories
out_dir = "runs/notebooks/04_ablation_p_bs"  # result.json goes here

# %%
from workbench.notebook_steps import pretrain_config, pretrain_probe_write
from workbench.params import validate
from workbench.results import results_table

args = validate(scale=scale, support=support, unlabeled=unlabeled, p=p, b_s=b_s, tasks=tasks,
                probe_seeds=probe_seeds, steps=steps, batch_size=batch_size, seed=seed, runs_dir=runs_dir,
                out_dir=out_dir)
config = pretrain_config(args, method="semisupcon")
print(f"p = {config.p}, b_s = {config.b_s}: {int(config.batch_size * config.b_s)} of {config.batch_size} clips "
      f"per batch labelled, {config.steps} steps")

# %% [markdown]
# ## Pretrain and probe

# %%
out = pretrain_probe_write(args, "04_ablation_p_bs", config, model=f"p={config.p} b_s={config.b_s}")
results_table(out["results"])
