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
# # 09 · The latent space (Figure 4)
#
# t-SNE and UMAP maps of frozen track embeddings for one task's test set. In the paper, a
# model pretrained with NSynth pitch as support data organises the NSynth test set by pitch —
# octaves run around the map and pitches a semitone or an octave apart sit close together —
# while a self-supervised model's map is much less separable. Colour the points by label,
# pitch class, octave or instrument to look for that structure.
#
# **Your own audio**: `-p task folder -p data_root "my music/" -p split all` maps every file
# under the folder (recursively); without labels the points are coloured by sub-folder (or
# by file). `-p level chunk` draws one point per chunk, with its time in the track on hover,
# to see how a track moves through the space.
#
# Headless runs save each map as a self-contained HTML file (plotly.js inlined; hover shows
# the clip, a click plays its audio file) and a static PNG. In JupyterLab the explorer below
# lets you switch checkpoint, task, reducer and colouring, and play a clip by clicking it.

# %% tags=["parameters"]
scale = "demo"  # smoke | demo | paper (only changes the embedding budget)
checkpoints = ""  # checkpoint files to compare, "a.ckpt,b.ckpt"; "": the newest finished run under runs_dir
models = ""  # a name per checkpoint; "": the run folder names
task = "nsynth_pitch"  # the task whose clips are mapped; "folder" with data_root: your own audio
data_root = None  # the task's data root (e.g. a folder of your audio); None: resolved per data set
split = "test"  # which split: train | valid | test | all (every clip: use it for a folder)
level = "track"  # track: a point per track | chunk: a point per chunk (time in track on hover)
reducers = "tsne,umap"  # maps to draw: tsne, umap, pca
color_by = "pitch_class"  # label | pitch_class | octave | instrument | file | folder
max_points = 2000  # at most this many points (seeded subset); None: all
seed = 0  # seed of the reductions and the subset
interactive = True  # also build the ipywidgets explorer
runs_dir = "runs/pretrain"  # searched when checkpoints is empty
out_dir = "runs/notebooks/09_latent_space"  # HTML, PNG and result.json go here

# %%
from pathlib import Path

from IPython.display import display

from workbench import figures, latent
from workbench.notebook_steps import latest_checkpoint, probe_settings, write_result
from workbench.params import ParameterError, validate

args = validate(scale=scale, checkpoints=checkpoints, models=models, task=task, data_root=data_root, split=split,
                level=level, reducers=reducers, color_by=color_by, max_points=max_points, seed=seed,
                interactive=interactive, runs_dir=runs_dir, out_dir=out_dir)
ckpts = args.checkpoints or [latest_checkpoint(args.runs_dir)]
names = args.models or [Path(c).parents[1].name if Path(c).name == "last.ckpt" else Path(c).stem for c in ckpts]
if len(names) != len(ckpts):
    raise ParameterError(f"parameter models={models!r}: give one name per checkpoint ({len(ckpts)})")
extract_kwargs, _ = probe_settings(args.scale)

# %% [markdown]
# ## Maps of every checkpoint, saved as HTML and PNG

# %%
frames, saved = {}, []
for name, ckpt in zip(names, ckpts):
    for reducer in args.reducers:
        frame = latent.embedding_frame(ckpt, args.task, split=args.split, reducer=reducer, seed=args.seed,
                                       root=args.data_root, max_points=args.max_points,
                                       extract_kwargs=extract_kwargs, level=args.level)
        frames[(name, reducer)] = frame
        shown_by = latent.resolve_color_by(frame, args.color_by)
        if shown_by != args.color_by:
            print(f"{args.task} has no {args.color_by} information: coloured by {shown_by}")
        fig, files = latent.save_maps(frame, args.out_dir / f"{name}-{args.task}-{reducer}-{shown_by}", shown_by,
                                      title=f"{name}: {latent._title(frame, shown_by)}")
        saved += files
        figures.show(fig, static=files[-1])
print("\n".join(map(str, saved)))

# %% [markdown]
# ## Explore interactively
# Pick the checkpoint, task, reducer and colouring; hover a point to see the clip; click it
# to listen (clicks need the `anywidget` package; without it, pick the clip from the list).

# %%
if args.interactive:
    cached = {(str(ckpts[names.index(n)]), args.task, r): f for (n, r), f in frames.items()}

    def frame_fn(ckpt, task_name, reducer):
        key = (str(ckpt), task_name, reducer)
        if key not in cached:
            cached[key] = latent.embedding_frame(ckpt, task_name, split=args.split, reducer=reducer, seed=args.seed,
                                                 root=args.data_root, max_points=args.max_points,
                                                 extract_kwargs=extract_kwargs, level=args.level)
        return cached[key]

    first = frames[(names[0], args.reducers[0])]
    explorer = latent.Explorer(dict(zip(names, map(str, ckpts))), latent.explorer_tasks(args.task, args.data_root),
                               reducers=args.reducers, color_by=latent.resolve_color_by(first, args.color_by),
                               frame_fn=frame_fn)
    display(explorer.widget)

# %%
print(write_result(args.out_dir, "09_latent_space", args, files=[str(p) for p in saved],
                   checkpoints=[str(c) for c in ckpts]))
