"""Rebuild rmlearn/assets/tokenizer.json from the text the project ships.

    python scripts/build_tokenizer.py

Byte-level BPE (any text can be encoded, nothing is ever unknown) with two special tokens that
are distinct on purpose: <|endoftext|> (EOS, where the reward is read) and <|pad|> (padding).
Training is deterministic, so the committed file can be checked against a rebuild.
"""

from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

ASSETS = Path(__file__).resolve().parents[1] / "rmlearn" / "assets"
SOURCES = ["course_text.txt", "support_text.txt"]
SPECIAL = ["<|endoftext|>", "<|pad|>"]  # ids 0 and 1
VOCAB_SIZE = 1024


def build() -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train([str(ASSETS / name) for name in SOURCES], trainer)
    return tokenizer


if __name__ == "__main__":
    out = ASSETS / "tokenizer.json"
    build().save(str(out))
    print(f"wrote {out}")
