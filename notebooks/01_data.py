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
# # 01 · Data: locate, summarise, listen, look
#
# Every task reads its data from the first of: an explicit `data_root`, `$WORKBENCH_DATA/<data set>`,
# or the **embedded benchmark** — music rendered from MIDI with General MIDI SoundFonts by a
# real synthesiser (FluidSynth), deterministic from a seed, in the layouts of NSynth,
# GiantSteps key, MagnaTagATune and FMA. The embedded benchmark is rendered on first use into
# `$WORKBENCH_CACHE` (its size: `$WORKBENCH_EMBEDDED_SCALE`, default `demo`). Results on it are
# always marked *synthetic*.

# %% tags=["parameters"]
scale = "demo"  # smoke | demo | paper (at paper scale the real data sets must be under $WORKBENCH_DATA)
data_tasks = "nsynth_pitch,nsynth_instrument,giantsteps_key,mtat_top50,fma_medium"  # tasks to summarise
data_root = None  # one data root for every task; None: resolved per data set
examples = 3  # clips to listen to and look at, per task (0: none)
seed = 0  # which examples are picked
out_dir = "runs/notebooks/01_data"  # summary.csv, spectrograms and result.json go here

# %%
import pandas as pd
from IPython.display import Image, display

from workbench import data, listen
from workbench.data.summary import summarize
from workbench.notebook_steps import write_result
from workbench.params import validate

args = validate(scale=scale, data_tasks=data_tasks, data_root=data_root, examples=examples, seed=seed,
                out_dir=out_dir)
args.out_dir.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## Where each task reads its data
# `source` says how the root was found (explicit, env or embedded); `synthetic` marks the
# embedded benchmark.

# %%
roots = pd.DataFrame([{"task": t, **data.data_root(t, args.data_root).to_dict()} for t in args.data_tasks])
roots

# %% [markdown]
# ## Per-task statistics
# Clips and seconds per split, classes present out of the task's classes, and the SoundFonts
# each split was rendered with (training notes and test notes come from different SoundFonts,
# so a probe must generalise across instrument timbres).

# %%
stats = summarize(args.data_tasks, args.data_root)
stats.to_csv(args.out_dir / "summary.csv", index=False)
stats.drop(columns=["root"])

# %% [markdown]
# ## Listen and look
# A few training clips per task, different labels first, with their log-mel spectrograms.

# %%
drawn = {}
for name in args.data_tasks if args.examples else []:
    clips = listen.examples(name, args.examples, split="train", seed=args.seed, root=args.data_root)
    print(f"{name}: {data.task(name, args.data_root).description}")
    display(listen.players(clips))
    drawn[name] = listen.spectrograms(clips, args.out_dir / f"spectrograms-{name}.png")
    display(Image(filename=str(drawn[name])))

# %%
print(write_result(args.out_dir, "01_data", args, summary=stats.drop(columns=["root"]).to_dict("records"),
                   spectrograms={k: str(v) for k, v in drawn.items()}))
