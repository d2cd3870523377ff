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
# # 05 · Ablation: number of views at a fixed batch (Table 7)
#
# With N views per clip and B clips, a batch has M = N·B rows. Holding N·B fixed (192 in the
# paper) trades negatives for self-supervised positives: more views give more positives per
# anchor and fewer distinct clips. The paper reports a sweet spot around N = 4–8 for
# self-supervised (SSL), supervised (SL) and semi-supervised models. This notebook runs one
# (method, N) point; the grid is `experiments/table7_views.yaml`.

# %% tags=["parameters"]
scale = "demo"  # smoke | demo | paper
method = "semisupcon"  # simclr (SSL) | supcon (SL) | semisupcon (Semi-SL)
support = "mtat_top50"  # labelled support task (SL, Semi-SL)
unlabeled = "fma_medium"  # unlabelled pool (SSL, Semi-SL)
p = 1.0  # fraction of the labelled set ever seen (Semi-SL)
b_s = 0.5  # labelled fraction of each batch (Semi-SL)
n_views = 2  # views N per clip
rows_per_batch = None  # N·B, held fixed; None: the scale's batch_size × 2 (paper: 192)
tasks = "mtat_top50"  # downstream tasks
probe_seeds = "0"  # probe seeds
steps = None  # training steps; None: the scale's
seed = 0  # pretraining seed
runs_dir = "runs/pretrain/05_ablation_views"  # pretraining run directories
out_dir = "runs/notebooks/05_ablation_views"  # result.json goes here

# %%
from workbench.config import SCALES
from workbench.notebook_steps import pretrain_config, pretrain_probe_write
from workbench.params import ParameterError, validate
from workbench.results import results_table

args = validate(scale=scale, method=method, support=support, unlabeled=unlabeled, p=p, b_s=b_s, n_views=n_views,
                rows_per_batch=rows_per_batch, tasks=tasks, probe_seeds=probe_seeds, steps=steps, seed=seed,
                runs_dir=runs_dir, out_dir=out_dir)
rows = args.rows_per_batch or 2 * SCALES[args.scale]["batch_size"]
if rows % args.n_views:
    raise ParameterError(f"parameter n_views={n_views!r}: N·B = {rows} is not divisible by N; choose N among "
                         f"{[n for n in range(1, rows + 1) if rows % n == 0]}")
config = pretrain_config(args, batch_size=rows // args.n_views)
print(f"{config.method}: N = {config.n_views} views × B = {config.batch_size} clips = {rows} rows per batch")

# %% [markdown]
# ## Pretrain and probe

# %%
out = pretrain_probe_write(args, "05_ablation_views", config, model=f"{config.method} N={config.n_views}")
results_table(out["results"])
