"""One loader module per data set folder name (``Task.dataset``).

Each module exposes ``build(spec: Task, root: Path) -> (manifest DataFrame, classes)``;
:func:`workbench.data.manifest` imports the module by name and calls it.  Shared rules
(layout errors, dropped-row warnings, seeded splits) live in :mod:`._common`.
"""

from ._common import DataWarning, DatasetLayoutError

__all__ = ["DataWarning", "DatasetLayoutError"]
