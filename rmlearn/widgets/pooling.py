"""Which hidden state becomes the reward? An explorer for EOS, mean and last-column pooling (lesson 02).

``pooling_view`` computes everything through the library (``RewardModel.hidden``, ``pool``, the
head, ``token_scores``); ``pooling_explorer`` only wires controls to it and redraws.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ..data import PreferencePair, support_pairs
from ..inputs import encode, encode_batch, pad_batch, special_ids
from ..pooling import POOLINGS, last_token_index, pool
from ..synthetic import FILLER

SIDES = ("right", "left")

def pair_rewards(model: Any, tokenizer: Any, pair: PreferencePair, side: str = "right") -> dict[str, tuple[float, float]]:
    """(r_chosen, r_rejected) of ``pair`` under every pooling, both scored in one batch padded on
    ``side`` (the shorter answer gets the padding, as in training and evaluation)."""
    if side not in SIDES:
        raise ValueError(f"padding side must be one of {SIDES}, got {side!r}")
    ids, mask = encode_batch(tokenizer, [pair.prompt] * 2, [pair.chosen, pair.rejected], side=side)  # (2, T)
    with torch.no_grad():
        hidden = model.hidden(ids, mask)  # (2, T, D)
        return {how: tuple(model.head(pool(hidden, mask, how)).squeeze(-1).tolist()) for how in POOLINGS}


def padding_flip(model: Any, tokenizer: Any, pairs: list[PreferencePair] | None = None,
                 min_gap: float = 1.0) -> tuple[PreferencePair, str] | None:
    """The first pair of ``pairs`` (default: ``support_pairs()``) whose preference right padding turns
    around: in one right-padded batch, EOS pooling prefers the chosen answer and the naive ``last``
    pooling the rejected one, each by at least ``min_gap``. Returns ``(pair, label)``, ``label`` being
    the answer that gets the padding (``"chosen"`` or ``"rejected"``), or ``None`` if no pair flips.

    The gap keeps the pick the same on every CPU: scores that differ in the 6th digit cannot move a
    pair across it.
    """
    for pair in support_pairs() if pairs is None else pairs:
        rewards = pair_rewards(model, tokenizer, pair, "right")
        (eos_c, eos_r), (last_c, last_r) = rewards["eos"], rewards["last"]
        if eos_c - eos_r >= min_gap and last_r - last_c >= min_gap:
            return padded_answer(tokenizer, pair)
    return None


def padded_answer(tokenizer: Any, pair: PreferencePair) -> tuple[PreferencePair, str]:
    """``(pair, label)`` of the answer that gets the padding when the pair is batched (the shorter one)."""
    return pair, "chosen" if _pad_in_batch(tokenizer, pair, "chosen") else "rejected"


@dataclass
class PoolingView:
    """One (prompt, response) row as the model sees it, and what each pooling makes of it.

    ``tokens``, ``input_ids``, ``attention_mask`` and ``token_scores`` are per position (T,);
    ``token_scores`` is NaN on padding. ``scores[how]`` is the reward under pooling ``how`` and
    ``reads[how]`` the position it reads (``None`` for ``"mean"``, which averages all real tokens).
    """

    tokens: list[str]
    input_ids: torch.Tensor  # (T,)
    attention_mask: torch.Tensor  # (T,)
    token_scores: torch.Tensor  # (T,)
    scores: dict[str, float] = field(default_factory=dict)
    reads: dict[str, int | None] = field(default_factory=dict)
    side: str = "right"

    @property
    def num_real(self) -> int:
        return int(self.attention_mask.sum())

    def read_token(self, how: str) -> str:
        """The token a pooling reads, as text (``"all N real tokens"`` for mean pooling)."""
        at = self.reads[how]
        return f"all {self.num_real} real tokens" if at is None else self.tokens[at]


def filler_words(n: int) -> str:
    """``n`` neutral words taken in turn from the course's filler phrases (they carry no quality).

    >>> filler_words(4)
    'thanks for writing hope'
    """
    words = " ".join(FILLER).split()
    return " ".join(words[i % len(words)] for i in range(n))


def pooling_view(
    model: Any, tokenizer: Any, prompt: str, response: str, filler: int = 0, pad: int = 0, side: str = "right"
) -> PoolingView:
    """Score one response under every pooling, with ``filler`` neutral words appended to it and
    ``pad`` padding tokens added on ``side``.

    The padded row is what the model would see inside a batch whose longest sequence is ``pad``
    tokens longer. Each score is the model's own head applied to ``pool(hidden, mask, how)``.
    """
    if side not in SIDES:
        raise ValueError(f"padding side must be one of {SIDES}, got {side!r}")
    if filler < 0 or pad < 0:
        raise ValueError(f"filler and pad must be >= 0, got filler={filler}, pad={pad}")
    if filler:
        response = f"{response} {filler_words(filler)}"
    _, pad_id = special_ids(tokenizer)
    seq = encode(tokenizer, prompt, response, getattr(model, "max_length", None))
    # a placeholder row `pad` tokens longer makes pad_batch pad ours, as in a real batch
    ids, mask = pad_batch([seq, [pad_id] * (len(seq) + pad)], pad_id, side)
    ids, mask = ids[:1], mask[:1]  # (1, T)
    with torch.no_grad():
        hidden = model.hidden(ids, mask)  # (1, T, D)
        scores = {how: model.head(pool(hidden, mask, how)).item() for how in POOLINGS}
    reads = {"eos": int(last_token_index(mask)[0]), "mean": None, "last": ids.shape[1] - 1}
    return PoolingView(
        tokens=[tokenizer.decode([i]) for i in ids[0].tolist()],
        input_ids=ids[0],
        attention_mask=mask[0],
        token_scores=model.token_scores(ids, mask)[0],
        scores=scores,
        reads=reads,
        side=side,
    )


def _pair_html(pair: PreferencePair, rewards: dict[str, tuple[float, float]], side: str) -> str:
    rows = "".join(
        f"<tr><td>{how}</td><td>{rc:.3f}</td><td>{rr:.3f}</td>"
        f"<td class='rm-prefers-{how}'>{'chosen ✓' if rc > rr else 'rejected ✗'}</td></tr>"
        for how, (rc, rr) in rewards.items()
    )
    return (
        f"<p>The pair in one batch, padded on the {side} (the shorter answer gets the padding):</p>"
        "<table class='rm-pair' style='border-spacing: 14px 2px'><tr><th>pooling</th><th>r_chosen</th>"
        f"<th>r_rejected</th><th>prefers</th></tr>{rows}</table>"
    )


def _summary_html(view: PoolingView) -> str:
    rows = "".join(
        f"<tr><td>{how}</td><td class='rm-score-{how}'>{view.scores[how]:.4f}</td>"
        f"<td>{_escape(view.read_token(how))}</td></tr>"
        for how in POOLINGS
    )
    return (
        "<table class='rm-pooling' style='border-spacing: 14px 2px'><tr><th>pooling</th><th>reward</th><th>reads</th></tr>"
        f"{rows}</table><p>{view.num_real} real tokens + "
        f"{len(view.tokens) - view.num_real} padding ({view.side})</p>"
    )


def _escape(text: str) -> str:
    import html

    return html.escape(repr(text)[1:-1])


def _pad_in_batch(tokenizer: Any, pair: PreferencePair, label: str) -> int:
    """How many PAD tokens the ``label`` answer gets when batched with the other answer of ``pair``."""
    lengths = {k: len(encode(tokenizer, pair.prompt, getattr(pair, k))) for k in ("chosen", "rejected")}
    return max(lengths.values()) - lengths[label]


def pooling_explorer(model: Any = None, tokenizer: Any = None):
    """Pick a prompt/response, add filler words and padding, and watch what each pooling reads.

    An example is one answer of a support pair; its padding starts at what it gets in a batch
    with the other answer, and the summary shows which answer each pooling prefers in that batch.
    The explorer opens on ``padding_flip(model, tokenizer)``, the padded answer of a pair whose
    preference the naive ``last`` pooling turns around (the padded answer of the first support pair
    if none does). Picking an example clears the filler words.

    Defaults: the trained course model (``rmlearn.zoo.trained_reward_model()``) and
    ``course_tokenizer()``. Returns an ipywidgets ``VBox``; ``.controls`` names its controls,
    ``.summary`` is the HTML with the scores, ``.image`` the figure and ``.view`` holds the latest ``PoolingView``.
    """
    import ipywidgets as w

    from ..plots import figure_png, plot_token_scores

    if model is None:
        from ..zoo import trained_reward_model

        model = trained_reward_model()
    if tokenizer is None:
        from ..backbone import course_tokenizer

        tokenizer = course_tokenizer()
    pairs = support_pairs()
    options = [(f"{i}. {p.prompt} → {label}", (p, label))
               for i, p in enumerate(pairs) for label in ("chosen", "rejected")]
    start, start_label = padding_flip(model, tokenizer, pairs) or padded_answer(tokenizer, pairs[0])
    example = w.Dropdown(options=options, value=(start, start_label), description="Example",
                         layout=w.Layout(width="95%"))
    wide = w.Layout(width="95%")
    prompt = w.Text(value=start.prompt, description="Prompt", continuous_update=False, layout=wide)
    response = w.Textarea(value=getattr(start, start_label), description="Response", continuous_update=False,
                          layout=wide)
    filler = w.IntSlider(value=0, min=0, max=40, description="Filler words", continuous_update=False)
    pad = w.IntSlider(value=_pad_in_batch(tokenizer, start, start_label), min=0, max=40, description="Padding",
                      continuous_update=False)
    side = w.ToggleButtons(options=list(SIDES), value="right", description="Pad side")
    summary = w.HTML()
    image = w.Image(format="png", layout=w.Layout(align_self="flex-start", max_width="100%"))  # natural size
    box = w.VBox([example, prompt, response, w.HBox([filler, pad]), side, summary, image])
    box.controls = dict(example=example, prompt=prompt, response=response, filler=filler, pad=pad, side=side)
    box.summary, box.image = summary, image

    picking = []  # non-empty while a picked example fills both text fields

    def redraw(_=None):
        if picking:
            return
        try:
            view = pooling_view(model, tokenizer, prompt.value, response.value, filler.value, pad.value, side.value)
        except ValueError as err:  # e.g. a text the tokenizer cannot encode: say so, keep the old plot
            summary.value = f"<span style='color:#b00'>{_escape(str(err))}</span>"
            return
        box.view = view
        pair, _ = example.value
        summary.value = _summary_html(view) + _pair_html(pair, pair_rewards(model, tokenizer, pair, side.value), side.value)
        image.value = figure_png(plot_token_scores(view.tokens, view.token_scores, view.reads, view.scores))

    def pick(change):
        picking.append(True)
        try:
            pair, label = change["new"]
            prompt.value, response.value = pair.prompt, getattr(pair, label)
            pad.value = _pad_in_batch(tokenizer, pair, label)
            filler.value = 0  # filler typed for the last example would lengthen this one
        finally:
            picking.clear()
        redraw()  # once, with both fields set

    example.observe(pick, names="value")
    for control in (prompt, response, filler, pad, side):
        control.observe(redraw, names="value")
    redraw()
    return box
