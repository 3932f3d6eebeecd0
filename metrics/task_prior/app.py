"""The task_prior metric as a small Gradio Blocks app (works with gradio 6).

``evaluate``'s ``launch_gradio_widget`` is written for gradio 3 (``gradio.inputs``); this
app instead takes two ``.npy`` files (model embeddings ``(n, d)`` and prior embeddings
``(n, r)`` or class ids ``(n,)``), a temperature and the kernels, and shows what
``metric.compute`` returns. Run ``python metrics/task_prior/app.py``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import evaluate
import numpy as np

HERE = Path(__file__).resolve().parent
KERNELS = ["centered_cosine", "cosine", "linear", "projection"]


def metric_script(folder: Path = HERE) -> Path:
    """The module script beside this file: ``task_prior.py`` here, ``NAME.py`` in a Space
    that ``tp-harness metric deploy ORG/NAME`` wrote (evaluate loads ``NAME.py``)."""
    scripts = sorted(p for p in folder.glob("*.py") if p.name != Path(__file__).name)
    if len(scripts) != 1:
        raise FileNotFoundError(
            f"{folder} should hold exactly one metric script besides app.py; found "
            f"{[p.name for p in scripts]}"
        )
    return scripts[0]


def load_metric() -> Any:
    """The metric script beside this file (a Space's folder is not named task_prior)."""
    return evaluate.load(str(metric_script()))


def compute(
    metric: Any,
    predictions: str | None,
    references: str | None,
    temperature: float,
    model_kernel: str,
    prior_kernel: str,
) -> dict[str, Any]:
    """``metric.compute`` on two ``.npy`` files; a clear ``{"error": ...}`` otherwise."""
    if not predictions or not references:
        return {"error": "upload both .npy files: predictions (n, d) and references"}
    try:
        x = np.load(predictions, allow_pickle=False)
        p = np.load(references, allow_pickle=False)
        kernel = "label_graph" if p.ndim == 1 else prior_kernel
        out = metric.compute(
            predictions=x,
            references=p,
            temperature=float(temperature),
            model_kernel=model_kernel,
            prior_kernel=kernel,
        )
    except (ValueError, TypeError, OSError) as err:
        return {"error": str(err)}
    return dict(out)


def build_app(metric: Any | None = None) -> Any:
    """The Blocks app (not launched)."""
    import gradio as gr

    metric = metric or load_metric()
    with gr.Blocks(title="task_prior metric") as app:
        gr.Markdown(
            "# task_prior\nClosed-form mean and variance of `Tr(MG)` over the task prior "
            "`P(G_ij = 1) = sigmoid(K_ij / T)` (tp-harness). Class ids `(n,)` as references "
            "use the label graph."
        )
        with gr.Row():
            preds = gr.File(label="predictions .npy (n, d)", type="filepath", elem_id="preds")
            refs = gr.File(label="references .npy (n, r) or (n,)", type="filepath", elem_id="refs")
        with gr.Row():
            temp = gr.Number(value=0.1, label="temperature T", elem_id="temperature")
            mk = gr.Dropdown(KERNELS, value="centered_cosine", label="model kernel")
            pk = gr.Dropdown(KERNELS, value="centered_cosine", label="prior kernel")
        run = gr.Button("Compute", elem_id="compute")
        result = gr.JSON(label="result", elem_id="result")
        run.click(
            lambda *v: compute(metric, *v), [preds, refs, temp, mk, pk], result, api_name="compute"
        )
    return app


if __name__ == "__main__":
    build_app().launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
