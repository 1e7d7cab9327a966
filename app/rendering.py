"""PNG heatmaps of attention: tokens on both axes, a colour bar, model and version."""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def heatmap_png(
    maps: Sequence[np.ndarray],
    panel_titles: Sequence[str],
    query_labels: Sequence[str],
    key_labels: Sequence[str],
    title: str,
) -> bytes:
    """One panel per map (query rows x key columns), side by side, one shared colour bar."""
    count = len(maps)
    width = max(4.0, 0.32 * len(key_labels) + 2.0)
    height = max(3.0, 0.32 * len(query_labels) + 1.8)
    figure, axes = plt.subplots(1, count, figsize=(width * count, height), squeeze=False)
    image = None
    for axis, matrix, panel in zip(axes[0], maps, panel_titles, strict=True):
        image = axis.imshow(matrix, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        axis.set_xticks(range(len(key_labels)), key_labels, rotation=90, fontsize=8)
        axis.set_yticks(range(len(query_labels)), query_labels, fontsize=8)
        axis.set_title(panel, fontsize=9)
    figure.suptitle(title, fontsize=10)
    figure.colorbar(image, ax=axes[0].tolist(), fraction=0.03, pad=0.02, label="attention")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()
