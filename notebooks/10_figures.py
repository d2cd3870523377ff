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
# # 10 · The paper's figures and tables, from stored results
#
# Every experiment in `experiments/` collects its runs into
# `runs/experiments/<name>/<scale>/results.json`. This notebook redraws each experiment's
# figure from those files into `figures/<name>-<scale>.png` (with a CSV of the same numbers
# beside it), our numbers next to the paper's. Ours are marked *synthetic* when they come
# from the embedded benchmark; the paper's are on the real data sets. An experiment without
# results yet is listed with a note instead of a figure.

# %% tags=["parameters"]
scale = "demo"  # unused here (figures are drawn for every scale that has results); kept for uniformity
results_dir = "runs/experiments"  # where the experiment runner collected results
figures_dir = "figures"  # where figures are written
experiments_dir = "experiments"  # the experiment files
out_dir = "runs/notebooks/10_figures"  # result.json goes here

# %%
import pandas as pd
from IPython.display import Image, Markdown, display

from workbench.experiments import regenerate_figures, write_result
from workbench.paper_numbers import SOURCE, paper_table
from workbench.params import validate

args = validate(scale=scale, results_dir=results_dir, figures_dir=figures_dir, experiments_dir=experiments_dir,
                out_dir=out_dir)

# %% [markdown]
# ## Redraw every figure

# %%
records = regenerate_figures(args.results_dir, args.figures_dir, args.experiments_dir)
pd.DataFrame(records)

# %%
for r in records:
    if r["figure"]:
        display(Markdown(f"### {r['experiment']} ({r['scale']})"))
        display(Image(filename=r["figure"]))

# %% [markdown]
# ## The paper's numbers (real data, percent)
# From the paper's text, as stored in `workbench/paper_numbers.py`; cells the text extraction
# lost are left out.

# %%
display(Markdown(f"Source: {SOURCE}"))
for name in ("table2", "table3", "table4", "table6", "table7"):
    display(Markdown(f"### {name}"))
    display(paper_table(name))

# %%
print(write_result(args.out_dir, "10_figures", args, figures=records))
