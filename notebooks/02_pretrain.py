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
# # 02 · Contrastive pretraining
#
# Pretrain one encoder with the SemiSupCon loss. A batch holds B clips, each giving N views;
# a fraction **b_s** of the clips comes from the labelled *support* data set (of which only a
# fraction **p** is ever seen), the rest from the *unlabelled* pool. Views of the same clip
# are self-supervised positives; labelled clips that share a label (the class criterion
# **n**, or Dice *weighing*) are label positives. With b_s = 0 this is SimCLR/CLMR, with
# b_s = p = 1 it is supervised contrastive learning (SupCon).
#
# Run headlessly, e.g. `papermill notebooks/02_pretrain.ipynb out.ipynb -p support nsynth_pitch`.

# %% tags=["parameters"]
scale = "demo"  # smoke (seconds, CI) | demo (CPU minutes) | paper (GPU, real data, 200 k steps)
method = "semisupcon"  # semisupcon | simclr | clmr | supcon
support = "nsynth_pitch"  # labelled support task; "none" for pure self-supervision
unlabeled = "fma_medium"  # unlabelled pool task; "none" for none
p = 1.0  # fraction of the labelled training set ever seen, (0, 1]
b_s = 0.5  # fraction of each batch drawn from the labelled set, [0, 1]
n_views = 2  # views N per clip
criterion = 1  # shared labels needed for a label positive (an integer, at least 1), or "weighted"
encoder = None  # encoder name or preset (e.g. "samplecnn", "tunep_demo"); None: the scale's
preset = None  # augmentation preset ("semisupcon", "clmr"); None: the method's
steps = None  # training steps; None: the scale's (smoke 4, demo 2 000, paper 200 000)
batch_size = None  # clips per batch; None: the scale's (smoke 8, demo 48, paper 96)
temperature = None  # τ; None: the method's (0.1; CLMR 0.5)
lr = None  # Adam learning rate; None: the scale's
seed = 0  # pretraining seed (data order, p-subset, initialisation)
runs_dir = "runs/pretrain"  # where the run directory is created
out_dir = "runs/notebooks/02_pretrain"  # result.json (run directory, final loss) goes here

# %%
from workbench import figures, latent
from workbench.notebook_steps import pretrain_config, pretrain_summary, write_result
from workbench.params import validate

args = validate(scale=scale, method=method, support=support, unlabeled=unlabeled, p=p, b_s=b_s, n_views=n_views,
                criterion=criterion, encoder=encoder, preset=preset, steps=steps, batch_size=batch_size,
                temperature=temperature, lr=lr, seed=seed, runs_dir=runs_dir, out_dir=out_dir)
config = pretrain_config(args)
print(f"{config.method} on support={config.support} + unlabeled={config.unlabeled}: p={config.p}, "
      f"b_s={config.b_s}, N={config.n_views}, B={config.batch_size}, criterion={config.criterion}, "
      f"τ={config.temperature}, {config.steps} steps, encoder {config.encoder['name']}")

# %% [markdown]
# ## Train
# A new run directory holds the resolved `config.yaml`, the split ids (`splits/`, including
# the seeded p-subset of labelled clips), `env.json`, `metrics.csv` and the checkpoints.

# %%
from workbench.train.pretrain import pretrain

run_dir = pretrain(config, progress=True)
print("run directory:", run_dir)

# %% [markdown]
# ## Loss curves
# The total loss, and its two parts logged every few steps: the self-supervised part (only
# same-clip positives) and the label part (only label positives). The right panel shows the
# share of positive pairs in the M×M target matrix (one minus the paper's "sparsity").

# %%
figures.show(figures.loss_curves(run_dir))

# %% [markdown]
# ## Similarity vs target for one batch
# One batch drawn with the run's own pipeline, projected by the trained encoder and head:
# left, the cosine similarities z_i·z_j of its M = B·N views; right, the target matrix w the
# loss pulls them towards (labelled rows first, so label positives form blocks and the
# self-supervised positives are the off-diagonal pairs of each clip).

# %%
batch = latent.batch_similarity(run_dir, seed=config.seed)
print(f"loss on this batch: {batch['loss']:.3f}")
figures.show(figures.similarity_heatmaps(batch["similarity"], batch["targets"], batch["labeled"]))

# %% [markdown]
# ## Result
# `result.json` in `out_dir` records the run directory, checkpoint and final loss (the
# experiment runner collects it).

# %%
summary = pretrain_summary(run_dir)
print(write_result(args.out_dir, "02_pretrain", args, **summary))
summary
