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
# # 08 · Robustness to test-time corruption (Figure 3, appendix 8.4)
#
# A probe is trained on **clean** embeddings; the test audio is then corrupted and re-encoded.
# Severity s scales the training augmentation chain (`chain`): every application probability
# is multiplied by s (capped at 1) and every parameter range multiplied / divided by s, so
# s = 1 is the chain seen in training and s = 0 the clean test set. Appendix 8.4 adds novel
# corruptions never seen in training: chorus, distortion, reverb, compression, bitcrush, time
# stretch and splice-out. The paper finds contrastive models (self-, semi- and supervised)
# degrade more gracefully than the end-to-end supervised baseline.
#
# `method = "supervised"` trains the end-to-end baseline on `task` instead of pretraining; its
# encoder is then probed like the others (a clean-trained probe on its frozen features — the
# paper evaluates its own classifier head; the difference is noted in the result).

# %% tags=["parameters"]
scale = "demo"  # smoke | demo | paper
method = "semisupcon"  # semisupcon | simclr | clmr | supcon | supervised (end-to-end baseline)
support = "mtat_top50"  # labelled support task (semisupcon, supcon)
unlabeled = "fma_medium"  # unlabelled pool
p = 1.0  # fraction of the labelled set ever seen
b_s = 0.5  # labelled fraction of each batch
task = "mtat_top50"  # the downstream task corrupted at test time
corruptions = "chain"  # chain, chorus, distortion, reverb, compression, bitcrush, time_stretch, splice_out
severities = "0,0.5,1,2,3"  # severities s (0: clean)
probe_seeds = "0"  # clean-trained probes, one per seed
steps = None  # training steps; None: the scale's
batch_size = None  # clips per batch; None: the scale's
seed = 0  # pretraining seed (also the corruption seed)
runs_dir = "runs/pretrain/08_robustness"  # pretraining / supervised run directories
out_dir = "runs/notebooks/08_robustness"  # robustness.csv, result.json go here

# %%
import torch

from workbench.notebook_steps import pretrain_config, pretrain_settings, pretrain_summary, probe_settings, write_result
from workbench.params import validate
from workbench.robustness import evaluate_robustness, summarize

args = validate(scale=scale, method=method, support=support, unlabeled=unlabeled, p=p, b_s=b_s, task=task,
                corruptions=corruptions, severities=severities, probe_seeds=probe_seeds, steps=steps,
                batch_size=batch_size, seed=seed, runs_dir=runs_dir, out_dir=out_dir)
device = "cuda" if torch.cuda.is_available() else "cpu"
if args.method == "supervised":
    from workbench.train.supervised import SupervisedConfig

    overrides = {k: v for k, v in (("max_steps", args.steps), ("batch_size", args.batch_size)) if v is not None}
    sup_config = SupervisedConfig.for_scale(args.scale, task=args.task, seed=args.seed, runs_dir=str(args.runs_dir),
                                            **overrides)
    print(f"end-to-end supervised baseline on {args.task}, at most {sup_config.max_steps} steps")
else:
    config = pretrain_config(args)
    print(f"{config.method}: support {config.support}, b_s = {config.b_s}, {config.steps} steps")

# %% [markdown]
# ## Train the model

# %%
if args.method == "supervised":
    from workbench.train.supervised import train_supervised

    run_dir, supervised_result = train_supervised(sup_config)
    checkpoint = run_dir / "checkpoints" / "best.ckpt"
    checkpoint = checkpoint if checkpoint.exists() else run_dir / "checkpoints" / "last.ckpt"
    info = {"run_dir": str(run_dir), "checkpoint": str(checkpoint), "supervised_test": supervised_result["metrics"],
            "note": "end-to-end encoder evaluated with a clean-trained probe on its frozen features"}
    settings = {"method": "supervised", "pretrain_seed": args.seed}
else:
    from workbench.train.pretrain import pretrain

    run_dir = pretrain(config)
    info = pretrain_summary(run_dir)
    checkpoint = info["checkpoint"]
    settings = pretrain_settings(config)
print("checkpoint:", checkpoint)

# %% [markdown]
# ## Corrupt the test set at each severity and score the clean-trained probes

# %%
extract_kwargs, probe_kwargs = probe_settings(args.scale)
df = evaluate_robustness(str(checkpoint), args.task, corruptions=args.corruptions, severities=args.severities,
                         seed=args.seed, probe_seeds=args.probe_seeds, model=settings["method"],
                         out_dir=args.out_dir, device=device, extract_kwargs=extract_kwargs,
                         probe_kwargs=probe_kwargs)
table = summarize(df)
table

# %% [markdown]
# ## Metric against severity

# %%
from IPython.display import Image

from workbench import data, figures

synthetic = data.data_root(args.task).synthetic
rows = [{**r, **settings, "synthetic": synthetic} for r in table.to_dict("records")]
Image(filename=str(figures.figure3_robustness(rows, args.out_dir / "robustness.png")))

# %%
print(write_result(args.out_dir, "08_robustness", args, rows, **info))
