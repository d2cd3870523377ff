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
# Two sources of stored results, neither needing a model or a run folder:
#
# - **the claims** (`python -m workbench claims --scale <scale>`): one small result file per
#   cell in `results/<scale>/`. This notebook writes the claims report (`figures/claims.md`
#   and `figures/claims.json`; `claims-<scale>.*` for other scales: the paper's numbers, ours
#   with seeds, a verdict per claim) and draws the paper's figures and tables into
#   `figures/claims/<scale>/`: Figure 2 / Table 2, Table 3 (full grid), Table 4, Table 6,
#   Table 7, Figure 3, Figure 4 (the t-SNE pair, from the stored 2-D maps) and the MSA
#   poster's tables;
# - **the experiment grids** in `experiments/`, collected into
#   `runs/experiments/<name>/<scale>/results.json`, redrawn into `figures/<name>-<scale>.png`.
#
# Every figure has a CSV of the same numbers beside it, our numbers next to the paper's. Ours
# are marked *synthetic* when they come from the embedded benchmark; the paper's are on the
# real data sets; the two are never averaged together. A figure without results yet is
# listed with a note instead.

# %% tags=["parameters"]
scale = "demo"  # the claims' scale (results/<scale>/); experiment figures are drawn for every scale found
results_dir = "runs/experiments"  # where the experiment runner collected results
figures_dir = "figures"  # where figures are written
experiments_dir = "experiments"  # the experiment files
out_dir = "runs/notebooks/10_figures"  # result.json goes here

# %%
import pandas as pd
from IPython.display import Image, Markdown, display

from workbench.experiments import regenerate_figures
from workbench.notebook_steps import write_result
from workbench.paper_numbers import SOURCE, paper_table
from workbench.params import validate

args = validate(scale=scale, results_dir=results_dir, figures_dir=figures_dir, experiments_dir=experiments_dir,
                out_dir=out_dir)

# %% [markdown]
# ## The claims: report and figures from `results/<scale>/`

# %%
from workbench.claims import figures as claim_figures
from workbench.claims import report as claim_report

paths = claim_report.write_report(args.scale, figures=args.figures_dir)
claim_records = claim_figures.draw_all(args.scale, figures=args.figures_dir)
display(Markdown(paths["md"].read_text()))
pd.DataFrame(claim_records)

# %%
for r in claim_records:
    if r["path"]:
        display(Markdown(f"### {r['title']} ({args.scale})"))
        display(Image(filename=r["path"]))

# %% [markdown]
# ## Redraw every experiment's figure

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
print(write_result(args.out_dir, "10_figures", args, figures=records, claims=claim_records,
                   claims_report={k: str(v) for k, v in paths.items()}))
