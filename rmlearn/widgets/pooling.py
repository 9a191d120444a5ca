"""Which hidden state becomes the reward? An explorer for EOS, mean and last-column pooling (lesson 02).

``rmlearn.views.pooling_view`` computes everything through the library (``RewardModel.hidden``,
``pool``, the head, ``token_scores``); ``pooling_explorer`` only wires controls to it and redraws.
"""

from __future__ import annotations

from typing import Any

from ..data import PreferencePair, support_pairs
from ..pooling import POOLINGS
from ..views import SIDES, PoolingView, pad_in_batch, padded_answer, padding_flip, pair_rewards, pooling_view


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
    pad = w.IntSlider(value=pad_in_batch(tokenizer, start, start_label), min=0, max=40, description="Padding",
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
            pad.value = pad_in_batch(tokenizer, pair, label)
            filler.value = 0  # filler typed for the last example would lengthen this one
        finally:
            picking.clear()
        redraw()  # once, with both fields set

    example.observe(pick, names="value")
    for control in (prompt, response, filler, pad, side):
        control.observe(redraw, names="value")
    redraw()
    return box
