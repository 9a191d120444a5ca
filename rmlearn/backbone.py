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
def _course_special_ids() -> tuple[int, int, int]:
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

    vocab_size, eos_id, pad_id = _course_special_ids()
    settings = {**TINY_CONFIG, **config}
    cfg = GPT2Config(
        vocab_size=vocab_size, bos_token_id=eos_id, eos_token_id=eos_id, pad_token_id=pad_id,
        **settings,
    )
    with torch.random.fork_rng(devices=[]):  # seed the init without touching the caller's RNG
        torch.manual_seed(seed)
        model = GPT2Model(cfg)
    return model.eval()


def load_backbone(name_or_path: str | Path, **kwargs: Any) -> PreTrainedModel:
    """Load any Hugging Face decoder (a local directory or a hub id) as a bare backbone.

    ``AutoModel`` keeps only the decoder stack, so a causal-LM checkpoint (with its LM head) or a
    sequence-classification checkpoint both load here. Set ``HF_HUB_OFFLINE=1`` to forbid network
    access; a local directory never needs it.
    """
    from transformers import AutoModel

    path = Path(name_or_path).expanduser()
    looks_local = str(name_or_path).startswith(("/", ".", "~")) or len(path.parts) > 2
    if looks_local and not path.is_dir():
        raise FileNotFoundError(f"no model directory at {path} (a hub id looks like 'org/name')")
    name_or_path = path if path.is_dir() else name_or_path
    return AutoModel.from_pretrained(str(name_or_path), **kwargs).eval()
