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
# # 06 · Multilabel positive mining (Table 4)
#
# With multi-label support data (MTAT tags), two labelled clips are label positives if they
# share at least **n** tags (the class criterion; n = 1 by default), or — with *weighing* — the
# pair is pulled together with the Dice weight 2·|y_i ∧ y_j| / (|y_i| + |y_j|), while views of
# the same clip stay at weight 1. The paper finds weighing best for supervised contrastive
# models and performance falling as n grows. One (method, criterion) point per run; the grid
# is `experiments/table4_criterion.yaml`.

# %% tags=["parameters"]
scale = "demo"  # smoke | demo | paper
method = "semisupcon"  # supcon (supervised: every clip labelled) | semisupcon (semi-supervised)
criterion = 1  # shared tags needed for a positive (1, 2, 4, 6 …) or "weighted"
support = "mtat_top50"  # a multi-label support task
unlabeled = "fma_medium"  # unlabelled pool (semi-supervised)
p = 1.0  # fraction of the labelled set ever seen (semi-supervised)
b_s = 0.5  # labelled fraction of each batch (semi-supervised)
tasks = "mtat_top50"  # downstream tasks
probe_seeds = "0"  # probe seeds
steps = None  # training steps; None: the scale's
batch_size = None  # clips per batch; None: the scale's
seed = 0  # pretraining seed
runs_dir = "runs/pretrain/06_multilabel_criterion"  # pretraining run directories
out_dir = "runs/notebooks/06_multilabel_criterion"  # result.json goes here

# %%
from workbench import data
from workbench.notebook_steps import pretrain_config, pretrain_probe_write
from workbench.params import ParameterError, validate
from workbench.results import results_table

args = validate(scale=scale, method=method, criterion=criterion, support=support, unlabeled=unlabeled, p=p,
                b_s=b_s, tasks=tasks, probe_seeds=probe_seeds, steps=steps, batch_size=batch_size, seed=seed,
                runs_dir=runs_dir, out_dir=out_dir)
if args.support is None or data.task(args.support).kind != "multilabel":
    raise ParameterError(f"parameter support={support!r}: the class criterion needs a multi-label support task, "
                         "e.g. mtat_top50")
config = pretrain_config(args)
print(f"{config.method}, criterion {config.criterion}, support {config.support}, b_s = {config.b_s}")

# %% [markdown]
# ## Pretrain and probe

# %%
out = pretrain_probe_write(args, "06_multilabel_criterion", config, model=f"{config.method} n={config.criterion}")
results_table(out["results"])
