"""A sentence-transformers model run by ONNX Runtime, fp32 or with int8 weights.

The model folder is exported once with `torch.onnx.export` (mean pooling and L2 normalisation
inside the graph), quantised with `onnxruntime.quantization.quantize_dynamic`, and cached in a
writable folder keyed by the model's path and its weights' size and modification time. Later
loads (any process) reuse the cached files and need neither torch nor transformers.
sentence-transformers' own ONNX route pins a transformers older than ours, so it is not used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from tokenizers import Tokenizer

    from retrieval.embedders import Vectors

from retrieval.locks import file_lock

log = logging.getLogger(__name__)

OPSET = 17
FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
_FORMAT = 3  # bump when the exported graph or the quantisation changes: old caches are redone
# Matrix products the int8 export keeps at fp32: both feed-forward products of the first four
# layers. Quantised one at a time, they moved the vectors most (cosine to fp32 on the shipped
# off-topic messages and FAQ questions); kept at fp32, int8 lost at most 0.003 recall@1 on the
# dev sets instead of 0.033. Names from `torch.onnx.export` of a BERT-style model; a model
# without them is quantised in full.
FP32_NODES = tuple(
    f"/model/encoder/layer.{layer}/{part}/dense/MatMul"
    for layer in range(4)
    for part in ("intermediate", "output")
)
_POOLING = "1_Pooling"
# Texts of similar length share a batch; small batches keep int8 matrix products in cache.
_BATCH = 32
_EXTRA = "pip install -e '.[onnx]' (onnxruntime and onnx)"


class OnnxUnsupported(ValueError):
    """The model folder is not a pipeline the ONNX export reproduces (use backend = "torch")."""


def check_pipeline(model_dir: Path) -> int:
    """The maximum sequence length of a Transformer → mean Pooling → (Normalize) folder.

    Raises `OnnxUnsupported` for anything else (a Dense layer, CLS pooling, no tokenizer.json),
    because the exported graph would then give other vectors than sentence-transformers.
    """
    where = f"{model_dir}: the ONNX backends need a sentence-transformers folder with"
    try:
        modules = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
        pooling = json.loads((model_dir / _POOLING / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise OnnxUnsupported(f"{where} modules.json and {_POOLING}/config.json: {error}") from None
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    paths = [str(m.get("path", "")) for m in modules]
    if kinds[:2] != ["Transformer", "Pooling"] or kinds[2:] not in ([], ["Normalize"]):
        raise OnnxUnsupported(
            f"{where} Transformer, Pooling and Normalize only, not {kinds}; "
            'set [retrieval] backend = "torch"'
        )
    if paths[0] or paths[1] != _POOLING:
        raise OnnxUnsupported(f"{where} the transformer at its root, not {paths[:2]}")
    other_modes = [k for k, v in pooling.items() if k.startswith("pooling_mode_") and v]
    if other_modes != ["pooling_mode_mean_tokens"]:
        raise OnnxUnsupported(
            f'{where} mean pooling only, not {other_modes}; set [retrieval] backend = "torch"'
        )
    if not (model_dir / "tokenizer.json").is_file():
        raise OnnxUnsupported(f"{where} a fast tokenizer (tokenizer.json)")
    try:
        st_config = json.loads(
            (model_dir / "sentence_bert_config.json").read_text(encoding="utf-8")
        )
        return int(st_config.get("max_seq_length") or 512)
    except (OSError, ValueError):
        return 512


def cache_folder(model_dir: Path, cache_dir: Path) -> Path:
    """Where the exported files of `model_dir` live: one folder per model path and weights."""
    weights = sorted(p for p in model_dir.iterdir() if p.suffix in (".safetensors", ".bin"))
    if not weights:
        raise OnnxUnsupported(f"{model_dir}: no *.safetensors or *.bin weights to export")
    stamp = [str(model_dir.resolve()), str(_FORMAT), str(OPSET)]
    for path in weights:
        stat = path.stat()
        stamp.append(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
    key = hashlib.sha256("\n".join(stamp).encode()).hexdigest()[:16]
    return cache_dir / f"{model_dir.parent.name}-{model_dir.name}-{key}"


def exported_model(model_dir: Path, cache_dir: Path, *, quantized: bool) -> Path:
    """The cached ONNX file of `model_dir` (int8 when `quantized`), exported on first use.

    Safe from several processes: a lock serialises them and files appear whole (written
    beside their final name, then renamed).
    """
    folder = cache_folder(model_dir, cache_dir)
    target = folder / (INT8_FILE if quantized else FP32_FILE)
    if target.is_file():
        return target
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OnnxUnsupported(
            f"cannot write the ONNX cache {folder}: {error}; set [retrieval] onnx_dir to a "
            "writable folder"
        ) from None
    with file_lock(cache_dir / f".{folder.name}.lock"):
        fp32 = folder / FP32_FILE
        if not fp32.is_file():
            log.info("exporting %s to ONNX in %s (once, a few seconds)", model_dir, folder)
            _write_atomically(fp32, lambda out: _export(model_dir, out))
        if quantized and not target.is_file():
            log.info("quantising %s to int8", fp32)
            _write_atomically(target, lambda out: _quantize(fp32, out))
        (folder / "source.json").write_text(
            json.dumps({"model_dir": str(model_dir.resolve()), "opset": OPSET}), encoding="utf-8"
        )
    return target


class OnnxEncoder:
    """Encodes texts with an exported model: tokenise, sort by length, run small batches."""

    def __init__(
        self,
        model_dir: Path,
        cache_dir: Path,
        *,
        quantized: bool,
        batch_size: int = _BATCH,
        threads: int = 0,
    ) -> None:
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as error:
            raise OnnxUnsupported(
                f"the ONNX backends need onnxruntime: {_EXTRA} ({error})"
            ) from None
        max_length = check_pipeline(model_dir)
        self.path = exported_model(model_dir, cache_dir, quantized=quantized)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        options.intra_op_num_threads = threads  # 0: ONNX Runtime's default, one per core
        self._session = ort.InferenceSession(
            str(self.path), options, providers=["CPUExecutionProvider"]
        )
        self._tokenizer: Tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=max_length)
        self._batch = max(1, min(batch_size, _BATCH))
        self.dim = int(self._session.get_outputs()[0].shape[1])

    def encode(self, texts: Sequence[str]) -> Vectors:
        """L2-normalised float32 vectors, in the order of `texts`."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), self._batch):
            batch = order[start : start + self._batch]
            width = max(len(encodings[i].ids) for i in batch)
            ids = np.zeros((len(batch), width), dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, i in enumerate(batch):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            (vectors,) = self._session.run(None, {"input_ids": ids, "attention_mask": mask})
            out[batch] = vectors
        return out


def _export(model_dir: Path, out: Path) -> None:
    import torch
    from transformers import AutoModel

    class MeanPooled(torch.nn.Module):
        """The transformer, mean pooling over real tokens and L2 normalisation, as one graph."""

        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden: torch.Tensor = self.model(input_ids=input_ids, attention_mask=attention_mask)[0]
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            unit: torch.Tensor = mean / mean.norm(dim=1, keepdim=True).clamp(min=1e-12)
            return unit

    # Eager attention exports as plain matrix products, which ONNX Runtime fuses and quantises.
    model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager")
    model.eval()
    ids = torch.ones((2, 8), dtype=torch.int64)
    # The TorchScript exporter is deprecated in favour of the torch.export one, which needs
    # onnxscript and gives a graph that quantises worse; its tracer warnings are about
    # Python-side shape logic that the dynamic axes cover.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            MeanPooled(model),
            (ids, torch.ones_like(ids)),
            str(out),
            dynamo=False,
            opset_version=OPSET,
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "sequence"},
                "attention_mask": {0: "batch", 1: "sequence"},
                "embedding": {0: "batch"},
            },
        )


def _quantize(fp32: Path, out: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # quantize_dynamic reports every tensor it leaves alone, and advice, on the root logger.
    logging.disable(logging.WARNING)
    try:
        # Per-channel weight scales: mean cosine to the fp32 vectors 0.993 instead of 0.961.
        # Matrix products only (the word embeddings stay fp32, a lookup costs nothing), and the
        # early feed-forward ones at fp32: 0.998.
        quantize_dynamic(
            str(fp32),
            str(out),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
            nodes_to_exclude=list(FP32_NODES),
        )
    finally:
        logging.disable(logging.NOTSET)


def _write_atomically(target: Path, write: Callable[[Path], None]) -> None:
    fd, name = tempfile.mkstemp(prefix=f".{target.name}-", suffix=".onnx", dir=target.parent)
    os.close(fd)
    staging = Path(name)
    try:
        write(staging)
        staging.replace(target)
    finally:
        staging.unlink(missing_ok=True)
