"""Every claim of the SemiSupCon paper (and the MSA poster) as an experiment with seeds, the
paper's numbers beside ours and a verdict by a fixed rule.

- :mod:`workbench.claims.verdict`: the rule (pure functions, scipy tests);
- :mod:`workbench.claims.registry`: the claims, their cells and the paper's numbers;
- :mod:`workbench.claims.cells`: running one cell (pretrain + probes, end-to-end, COLA) and its config hash;
- :mod:`workbench.claims.store`: per-cell result files under ``results/<scale>/`` and their locks;
- :mod:`workbench.claims.runner`: ``python -m workbench claims`` (resumable, parallel-safe);
- :mod:`workbench.claims.report`: ``figures/claims.md`` and ``figures/claims.json`` from results alone;
- :mod:`workbench.claims.figures`: the paper's figures and tables from results alone.
"""
