"""The decoder under the reward model: the tiny course backbone, the course tokenizer, and loading
any Hugging Face decoder (lesson 01).

The course never downloads anything: ``tiny_backbone`` builds a GPT-2-style model from a config
(random init, seeded) and ``course_tokenizer`` reads the ``tokenizer.json`` shipped in
``rmlearn/assets`` (rebuilt by ``python scripts/build_tokenizer.py``). ``load_backbone`` is the real
loading path: a local directory or a hub id, exactly as ``transformers`` does it.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # transformers is heavy: import it only when a model is built
    from transformers import PreTrainedModel, PreTrainedTokenizerFast

ASSETS = Path(__file__).parent / "assets"
TOKENIZER_FILE = ASSETS / "tokenizer.json"
PAD_TOKEN = "<|pad|>"
EOS_TOKEN = "<|endoftext|>"

# The tiny course model: small enough to train in seconds on 2 CPU cores.
TINY_CONFIG: dict[str, Any] = dict(
    n_embd=64,  # d_model: width of every hidden state h_t
    n_layer=2,  # decoder blocks
    n_head=4,  # attention heads (16 dims each)
    n_positions=256,  # longest sequence, prompt + response + EOS
    embd_pdrop=0.0,  # no dropout: the same seed gives the same numbers
    resid_pdrop=0.0,
    attn_pdrop=0.0,
)


def course_tokenizer() -> PreTrainedTokenizerFast:
    """The course tokenizer: byte-level BPE built from text the project ships.

    EOS (``<|endoftext|>``) and PAD (``<|pad|>``) are distinct tokens, so padding can never be
    mistaken for the end of a response. A fresh object is returned each call (callers may change
    ``padding_side``).

    >>> tok = course_tokenizer()
    >>> tok.eos_token, tok.pad_token, tok.eos_token_id != tok.pad_token_id
    ('<|endoftext|>', '<|pad|>', True)
    """
    from transformers import PreTrainedTokenizerFast

    if not TOKENIZER_FILE.exists():
        raise FileNotFoundError(
            f"{TOKENIZER_FILE} is missing; rebuild it with `python scripts/build_tokenizer.py`"
        )
    return PreTrainedTokenizerFast(
        tokenizer_file=str(TOKENIZER_FILE), eos_token=EOS_TOKEN, pad_token=PAD_TOKEN
    )


@lru_cache(maxsize=1)
def course_special_ids() -> tuple[int, int, int]:
    """(vocabulary size, EOS id, PAD id) of ``course_tokenizer()``: what a tiny model must match."""
    tok = course_tokenizer()
    return len(tok), tok.eos_token_id, tok.pad_token_id


def tiny_backbone(seed: int = 0, **config: Any) -> PreTrainedModel:
    """A small randomly initialised GPT-2 decoder (``GPT2Model``) matched to ``course_tokenizer()``.

    Args:
        seed: seeds the weight initialisation; the same seed gives the same weights.
        **config: overrides for ``GPT2Config`` (e.g. ``n_layer=4``, ``n_embd=128``).

    >>> backbone = tiny_backbone(seed=0)
    >>> backbone.config.hidden_size, backbone.config.n_layer
    (64, 2)
    """
    import torch
    from transformers import GPT2Config, GPT2Model

    vocab_size, eos_id, pad_id = course_special_ids()
    settings = {**TINY_CONFIG, **config}
    cfg = GPT2Config(
        vocab_size=vocab_size, bos_token_id=eos_id, eos_token_id=eos_id, pad_token_id=pad_id,
        **settings,
    )
    with torch.random.fork_rng(devices=[]):  # seed the init without touching the caller's RNG
        torch.default_generator.manual_seed(seed)  # the CPU generator only: the caller's GPU ones stay as they are
        model = GPT2Model(cfg)
    return model.eval()


def load_backbone(name_or_path: str | Path, **kwargs: Any) -> PreTrainedModel:
    """Load any Hugging Face decoder (a local directory or a hub id) as a bare backbone.

    ``AutoModel`` keeps only the decoder stack, so a causal-LM checkpoint (with its LM head) or a
    sequence-classification checkpoint both load here (their heads are left out quietly; a
    decoder weight missing from the checkpoint is warned about). ``kwargs`` go to
    ``AutoModel.from_pretrained`` (``dtype``, ``device_map``, …). Set ``HF_HUB_OFFLINE=1`` to
    forbid network access; a local directory never needs it.
    """
    import warnings

    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    path = Path(name_or_path).expanduser()
    looks_local = str(name_or_path).startswith(("/", ".", "~")) or len(path.parts) > 2
    if looks_local and not path.is_dir():
        raise FileNotFoundError(f"no model directory at {path} (a hub id looks like 'org/name')")
    name_or_path = path if path.is_dir() else name_or_path
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "weights not used: score.weight" is expected here
    try:
        model, info = AutoModel.from_pretrained(str(name_or_path), output_loading_info=True, **kwargs)
    finally:
        hf_logging.set_verbosity(verbosity)
    if info.get("missing_keys"):
        missing = sorted(info["missing_keys"])
        warnings.warn(f"{name_or_path}: {len(missing)} decoder weights are not in the checkpoint and were "
                      f"initialised at random: {missing[:5]}", stacklevel=2)
    return model.eval()


GENERIC_TOKENIZERS = ("PreTrainedTokenizerFast", "TokenizersBackend")  # no model type of their own
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")


def load_tokenizer(name_or_path: str | Path) -> Any:
    """The tokenizer saved with a model (``save_pretrained(dir, tokenizer=tok)``), or a hub id's.

    Raises ``FileNotFoundError`` for a folder without one, rather than fall back on another
    tokenizer whose ids would mean different words to the model. A generic tokenizer
    (``PreTrainedTokenizerFast``, saved as ``TokenizersBackend``) is loaded as that class:
    ``AutoTokenizer`` would swap in the model type's own class (``Qwen2Tokenizer`` beside a Qwen2
    model), whose ids can differ.
    """
    import json

    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if not any((path / name).exists() for name in TOKENIZER_FILES):
            raise FileNotFoundError(
                f"{path} has no tokenizer (none of {', '.join(TOKENIZER_FILES)}); save the model with "
                "save_pretrained(dir, tokenizer=tok) or name the tokenizer to use"
            )
        settings = path / "tokenizer_config.json"
        saved_class = json.loads(settings.read_text()).get("tokenizer_class") if settings.is_file() else None
        if saved_class in GENERIC_TOKENIZERS and (path / "tokenizer.json").is_file():
            return PreTrainedTokenizerFast.from_pretrained(str(path))
        name_or_path = path
    elif len(path.parts) > 2 or str(name_or_path).startswith(("/", ".", "~")):
        raise FileNotFoundError(f"no tokenizer folder at {path} (a hub id looks like 'org/name')")
    return AutoTokenizer.from_pretrained(str(name_or_path))


def appends_eos(tokenizer: Any) -> bool:
    """Whether ``tokenizer(text)`` ends with EOS (a post-processor adds it), as a pipeline needs."""
    ids = tokenizer("a b", add_special_tokens=True)["input_ids"]
    return bool(ids) and ids[-1] == tokenizer.eos_token_id


def save_tokenizer_appending_eos(tokenizer: Any, directory: str | Path, max_length: int | None = None) -> None:
    """Save a copy of ``tokenizer`` to ``directory`` whose ``tokenizer(text)`` ends with EOS.

    Then transformers' pipeline builds ``[BOS?] prompt \\n response EOS`` as rmlearn does, and the
    reward is read at the same token. With ``max_length`` (the model's), the copy truncates from
    the left to that length, as rmlearn does, when asked to (``truncation=True``). The tokenizer
    given is left unchanged. Warns when EOS cannot be appended (no ``tokenizers`` backend).
    """
    import copy
    import warnings

    from .inputs import special_prefix

    tok = copy.deepcopy(tokenizer)
    tok.truncation_side = "left"  # keep the end of the response, as rmlearn's inputs do
    tok.padding_side = "right"  # the pipeline's batches: positions as rmlearn counts them (absolute ones too)
    if max_length is not None:
        tok.model_max_length = max_length
    if not appends_eos(tok):
        prefix = special_prefix(tok)
        try:
            tok.add_bos_token = bool(prefix) and prefix == [tok.bos_token_id]
            tok.add_eos_token = True  # transformers rebuilds its TemplateProcessing: [BOS] $A EOS
        except (AttributeError, TypeError, ValueError):
            pass
        if not appends_eos(tok) or special_prefix(tok) != prefix:
            _template_appending_eos(tok, prefix)
    if max_length is not None and getattr(tok, "backend_tokenizer", None) is not None:
        # tokenizer.json keeps the side only in its truncation settings (each call resets them: set last)
        tok.backend_tokenizer.enable_truncation(max_length, direction="left")
    tok.save_pretrained(directory)
    if tok.eos_token_id is None or not appends_eos(load_tokenizer(directory)):
        warnings.warn(f"the tokenizer saved in {directory} does not append EOS; transformers' pipeline "
                      "will read the reward at the last text token instead of EOS", stacklevel=3)


def _template_appending_eos(tok: Any, prefix: list[int]) -> None:
    """Set a ``tokenizers`` post-processor: ``prefix $A EOS`` (single), ``prefix $A EOS $B EOS`` (pair)."""
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is None or tok.eos_token is None:
        return
    from tokenizers import processors

    head = [tok.convert_ids_to_tokens(i) for i in prefix]
    specials = {t: i for t, i in zip(head, prefix)} | {tok.eos_token: tok.eos_token_id}
    single = " ".join([*head, "$A:0", tok.eos_token])
    backend.post_processor = processors.TemplateProcessing(
        single=single, pair=f"{single} $B:1 {tok.eos_token}:1", special_tokens=list(specials.items())
    )
