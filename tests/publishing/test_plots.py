"""Figures are saved without bbox_inches="tight": no text may leave the canvas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tp_harness.publishing import plots

LONG = "all-MiniLM-L6-v2@layer6 [prior, duplicate_of:all-MiniLM-L6-v2]"
NAMES = [f"all-MiniLM-L6-v2@layer{i}" for i in range(6)] + ["tfidf-lsa:dim=128", LONG]


def _outside(fig: Any, tol_in: float = 0.01) -> list[str]:
    """Where the drawn artists (text, legends, ...) reach beyond the canvas: the bounding
    box ``bbox_inches="tight"`` would crop or grow to, compared with the figure's own."""
    fig.canvas.draw()
    tight = fig.get_tightbbox(fig.canvas.get_renderer())  # inches
    w, h = fig.get_size_inches()
    out = []
    for side, value, limit in (
        ("left", -tight.x0, 0.0),
        ("bottom", -tight.y0, 0.0),
        ("right", tight.x1 - w, 0.0),
        ("top", tight.y1 - h, 0.0),
    ):
        if value > limit + tol_in:
            out.append(f"{side} by {value:.2f} in")
    return out


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The figures the plot functions would save (checked, then closed)."""
    figs: list[Any] = []

    def keep(fig: Any, path: str | Path) -> Path:
        figs.append(fig)
        return Path(path)

    monkeypatch.setattr(plots, "_save", keep)
    yield figs
    for fig in figs:
        plots._pyplot().close(fig)


def _scores() -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    out = []
    for prior in ("bundled:minilm", "a-much-longer-prior-name:dim=128"):
        for t in (0.1, 1.0):
            for i, name in enumerate(NAMES):
                out.append(
                    {
                        "model": name.split(" [")[0] if name == LONG else name,
                        "prior": prior,
                        "temperature": t,
                        "mean_per_pair": float(rng.uniform(1e-5, 4e-4)) * (10 if i == 7 else 1),
                        "std": float(rng.uniform(0.01, 0.4)),
                        "n": 979,
                        "flags": ["prior", "duplicate_of:all-MiniLM-L6-v2"] if i == 7 else [],
                    }
                )
    return out


def test_the_checker_sees_clipped_text(captured: list[Any]) -> None:
    fig, _ = plots._pyplot().subplots(figsize=(3, 2))
    captured.append(fig)
    fig.text(0.9, 0.5, LONG)
    assert [o for o in _outside(fig) if o.startswith("right by")], _outside(fig)


def test_scatter_labels_stay_on_the_canvas(captured: list[Any]) -> None:
    plots.mean_std_scatter(_scores(), "mean_vs_std.png")
    assert _outside(captured[0]) == []


def test_rotated_tick_labels_stay_on_the_canvas(captured: list[Any]) -> None:
    rng = np.random.default_rng(1)
    for names in (NAMES, NAMES[:1], [LONG, *NAMES[:2]]):
        plots.accuracy_distributions(
            {n: rng.uniform(0.5, 1.0, 64) for n in names}, "acc.png", title="ridge on 64 tasks"
        )
    assert [_outside(f) for f in captured] == [[], [], []]


def test_alignment_and_layer_figures_stay_on_the_canvas(captured: list[Any]) -> None:
    rows = [
        {
            "model": n,
            "prior": "p",
            "temperature": 1.0,
            "num_classes": 2,
            "closed_form_mean": 1e-4 * (i + 1),
            "sampled_alignment_mean": 1.1e-4 * (i + 1),
        }
        for i, n in enumerate(NAMES)
    ]
    probes = [{**r, "probe": "ridge", "mean": 0.6 + 0.03 * i} for i, r in enumerate(rows)]
    plots.alignment_vs_probes(rows, probes, "a.png", {NAMES[-1]: ["prior"]})
    layer_rows = [
        {"model": f"all-MiniLM-L6-v2@layer{i}", "mean_per_pair": 1e-4 * i, "rankme": 10.0 * i}
        for i in range(7)
    ]
    plots.layer_curves(layer_rows, ["mean_per_pair", "rankme"], "layers.png")
    assert [_outside(f) for f in captured] == [[], []]


def test_prior_sensitivity_legend_stays_on_the_canvas(captured: list[Any]) -> None:
    assert plots.prior_sensitivity(_scores(), "sens.png", 1.0) is not None
    assert _outside(captured[0]) == []


def test_saved_figures_are_not_tight_cropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The PNG has the figure's own size: no second, cropping render pass."""
    from PIL import Image

    sizes = []
    save = plots._save

    def spy(fig: Any, path: str | Path) -> Path:
        sizes.append(tuple(round(v * 120) for v in fig.get_size_inches()))
        return save(fig, path)

    monkeypatch.setattr(plots, "_save", spy)
    path = plots.accuracy_distributions({LONG: np.linspace(0, 1, 9)}, tmp_path / "a.png")
    with Image.open(path) as im:
        assert im.size == sizes[0]
