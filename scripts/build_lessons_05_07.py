"""Write lessons 05–07 as notebooks with cleared outputs: `python scripts/build_lessons_05_07.py`.

The notebooks are generated so that their text and code stay reviewable in one place; edit here,
rerun, and commit both this script and the notebooks.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from mark_slides import mark_slides
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

LESSONS = Path(__file__).resolve().parents[1] / "lessons"


def notebook(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    nb = new_notebook(metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    })
    nb.cells = [new_markdown_cell(text.strip()) if kind == "md" else new_code_cell(text.strip())
                for kind, text in cells]
    for i, cell in enumerate(nb.cells):
        cell.id = f"c{i:02d}"  # stable ids: a rebuild changes only what changed
    return nb


ANSWER_PLACES = (1, 3, 0, 2)  # where the right option goes in questions 1-4 of each quiz


def place_answers(source: str) -> str:
    """Quiz cells are written with the right option first; move it to ``ANSWER_PLACES`` so the
    position gives nothing away (the options and their explanations move together)."""
    captured = []

    def question(text, options, answer, why):
        captured.append((text, list(options), answer, list(why)))

    exec(source.replace("from rmlearn.widgets import Question, quiz", ""), {"Question": question, "quiz": list})
    blocks = []
    for number, (text, options, answer, why) in enumerate(captured):
        target = ANSWER_PLACES[number % len(ANSWER_PLACES)]
        for items in (options, why):
            items.insert(target, items.pop(answer))
        rows = lambda items: "".join(f"\n            {item!r}," for item in items)  # noqa: E731
        blocks.append(f"    Question(\n        {text!r},\n        options=({rows(options)}\n        ),\n"
                      f"        answer={target},\n        why=({rows(why)}\n        ),\n    ),")
    return "from rmlearn.widgets import Question, quiz\n\nquiz([\n" + "\n".join(blocks) + "\n])"


def md(text: str) -> tuple[str, str]:
    return "md", text


def code(text: str) -> tuple[str, str]:
    if text.strip().startswith("from rmlearn.widgets import Question, quiz"):
        text = place_answers(text)
    return "code", text


# ---------------------------------------------------------------------------------------------
# 05 · When the reward model learns the wrong thing
# ---------------------------------------------------------------------------------------------

LESSON_05 = [
    md("""
# 05 · When the reward model learns the wrong thing

A reward model has no idea what "good" means. It learns whatever separates the chosen answers from
the rejected ones in its training pairs. If the people who labelled those pairs had a habit that has
nothing to do with quality, for example a soft spot for long answers, the model will learn the habit
too, and later the policy will be rewarded for exploiting it.

**What you will learn**

- how an annotator's habit (preferring the longer answer) enters preference data;
- that a model trained on such data copies the habit, and that ordinary held-out accuracy can hide it;
- two diagnostics: a *length probe* and the correlation of reward with length;
- two mitigations, measured honestly: a length penalty on the scores, and rebalancing the data.
"""),
    md("""
## A world where we know the right answer

To see what a reward model learned, we need data whose true quality we know. The course's synthetic
responses are built from short phrases. Helpful phrases add one point of quality, unhelpful ones take
one away, and filler phrases add nothing but words. Most of the length comes from filler, so length
says little about quality (only a little: we will measure it below).
"""),
    code("""
%matplotlib inline
import torch

from rmlearn import (RewardModel, course_tokenizer, evaluate, length_probe, support_pairs,
                     synthetic_preferences, tiny_backbone, train_reward_model)
from rmlearn.data import FILLER, HELPFUL, SYNTHETIC_PROMPTS, UNHELPFUL, quality
from rmlearn.plots import plot_score_vs_length
from rmlearn.widgets.length_bias import by_quality, num_words
from rmlearn.zoo import course_data, trained_reward_model

tokenizer = course_tokenizer()
print("helpful (+1):  ", HELPFUL[:3], "...")
print("unhelpful (-1):", UNHELPFUL[:3], "...")
print("filler (0):    ", FILLER[:3], "...")
for text in ("click forgot password.", "thanks for writing, as you may know, click forgot password, kind regards."):
    print(f"quality {quality(SYNTHETIC_PROMPTS[0], text):+.0f}, {num_words(text):2d} words: {text}")
"""),
    md("""
## Annotators with a habit

`synthetic_preferences(n, length_bias=b)` simulates the labelling. For each pair the annotator
picks the better answer, except that with probability `b` they just pick the longer one. We compare
careful annotators (`b = 0`) with strongly biased ones (`b = 0.9`) on the same 500 pairs of texts.
"""),
    code("""
for bias in (0.0, 0.9):
    pairs = synthetic_preferences(500, seed=0, length_bias=bias)
    longer = sum(num_words(p.chosen) > num_words(p.rejected) for p in pairs) / len(pairs)
    better = sum(quality(p.prompt, p.chosen) > quality(p.prompt, p.rejected) for p in pairs) / len(pairs)
    print(f"length_bias {bias}: chosen is longer in {longer:.0%} of pairs, truly better in {better:.0%}")
"""),
    md("""
With careful annotators the chosen answer is longer about half the time, as chance would have it.
With biased ones the label mostly tracks length, and only a little more than half of the labels
still say which answer is really better.

Real data has milder versions of this. Even the course's own hand-written support pairs share it:
"""),
    code("""
support = support_pairs()
share = sum(len(p.chosen) > len(p.rejected) for p in support) / len(support)
print(f"support pairs where the preferred answer is the longer one: {share:.0%}")
"""),
    md("""
## Two reward models

`trained_reward_model(length_bias=b)` trains the tiny course model on 400 of these pairs (plus the
support pairs) and caches it. The texts are identical for both models; only the labels differ.
"""),
    code("""
models = {bias: trained_reward_model(length_bias=bias) for bias in (0.0, 0.9)}
_, held_out = course_data(length_bias=0.9)      # held-out pairs, labelled by the biased annotators
held_out_true = by_quality(held_out)             # the same pairs, labelled by true quality
print(len(held_out), "held-out pairs")
"""),
    md("""
## Held-out accuracy can hide the problem

The usual check is accuracy on held-out pairs. But if those pairs were labelled by the same people,
they share the same habit, and a model that copied it looks fine. Here we can also score the
held-out pairs against the true quality.
"""),
    code("""
print("model trained with    vs annotators' labels    vs true quality")
for bias, model in models.items():
    annotators = evaluate(model, tokenizer, held_out)["accuracy"]
    truth = evaluate(model, tokenizer, held_out_true)["accuracy"]
    print(f"length_bias {bias}           {annotators:.3f}                  {truth:.3f}")
"""),
    md("""
The biased model agrees with its (biased) annotators on most pairs, which would pass a casual check,
yet it gets far fewer of the true-quality pairs right than the model trained on careful labels.
In real life there is no "true quality" column, so we need diagnostics that do not depend on it.
"""),
    md("""
## Diagnostic 1 · A length probe

`length_probe(n)` builds pairs where quality and length disagree: the better answer is always the
*shorter* one. A model that learned quality picks the shorter answer; a model that learned length
picks the longer one. The fraction of probe pairs on which the model prefers the longer answer is
`1 − accuracy`.
"""),
    code("""
probe = length_probe(200, seed=1)
print("example probe pair:\\n  better, shorter:", probe[0].chosen, "\\n  worse, longer:  ", probe[0].rejected)
for bias, model in models.items():
    prefers_longer = 1 - evaluate(model, tokenizer, probe)["accuracy"]
    print(f"length_bias {bias}: prefers the longer answer on {prefers_longer:.0%} of probe pairs")
"""),
    md("""
## Diagnostic 2 · Does the reward rise with length?

Score every held-out response and compare the reward with its length. In the plot each dot is a
response, coloured by its true quality. A model that learned quality shows horizontal bands of
colour; one that learned length shows dots climbing to the right whatever their colour.
"""),
    code("""
responses = [r for p in held_out for r in (p.chosen, p.rejected)]
prompts = [p.prompt for p in held_out for _ in range(2)]
lengths = torch.tensor([num_words(r) for r in responses], dtype=torch.float32)
true_quality = torch.tensor([quality(x, r) for x, r in zip(prompts, responses)], dtype=torch.float32)
print(f"correlation of TRUE quality with length: {torch.corrcoef(torch.stack([true_quality, lengths]))[0, 1]:+.3f}")

panels = {}
for bias, model in models.items():
    scores = model.score(prompts, responses, tokenizer)
    corr = torch.corrcoef(torch.stack([scores, lengths]))[0, 1].item()
    print(f"length_bias {bias}: correlation of reward with length {corr:+.3f}")
    panels[f"trained with length_bias {bias}"] = (lengths, scores, true_quality)
plot_score_vs_length(panels)
"""),
    md("""
True quality itself is only weakly tied to length here (helpful phrases happen to be about a word
longer than unhelpful ones). The careful model's reward follows length about as much as true quality
does. The biased model's reward follows length far more: within one colour, that is at equal quality,
its dots climb to the right. A correlation like this on your own data is a warning sign, not a proof:
in real text longer answers are sometimes really better, so compare with what quality alone explains.
"""),
    md("""
## Mitigation A · A length penalty on the scores

The cheapest fix needs no retraining: subtract a fixed amount per word, `r' = r − α · words`.
We estimate `α` as the slope of reward against length over the training responses. To reuse
`evaluate`, the penalised model is a small object with the same `score` method.
"""),
    code("""
biased = models[0.9]
train_pairs, _ = course_data(length_bias=0.9)
train_texts = sorted({r for p in train_pairs for r in (p.chosen, p.rejected)})
x = torch.tensor([num_words(r) for r in train_texts], dtype=torch.float32)
y = biased.score(["How do I reset my password?"] * len(train_texts), train_texts, tokenizer)
alpha = torch.linalg.lstsq(torch.stack([x, torch.ones_like(x)], 1), y[:, None]).solution[0].item()
print(f"alpha = {alpha:.3f} reward per word")


class LengthPenalised:
    \"\"\"A reward model whose score loses `alpha` per word of the response.\"\"\"

    def __init__(self, model, alpha):
        self.model, self.alpha = model, alpha

    def score(self, prompts, responses, tokenizer, batch_size=64):
        words = torch.tensor([num_words(r) for r in responses], dtype=torch.float32)
        return self.model.score(prompts, responses, tokenizer, batch_size) - self.alpha * words


penalised = LengthPenalised(biased, alpha)
for name, model in (("biased", biased), ("biased + penalty", penalised)):
    prefers_longer = 1 - evaluate(model, tokenizer, probe)["accuracy"]
    truth = evaluate(model, tokenizer, held_out_true)["accuracy"]
    print(f"{name:17s} probe prefers longer {prefers_longer:.0%}   held-out true-quality accuracy {truth:.3f}")
"""),
    md("""
The probe looks much better, but the ordinary held-out pairs got *worse*. The penalty did not teach
the model quality; it flipped a preference for long answers into a preference for short ones, which
the probe rewards by construction (its better answer is always the shorter). Lesson: judge a fix on
the probe **and** on ordinary data.
"""),
    md("""
## Mitigation B · Rebalance the training data

The model learns length because length predicts the label. Break that link: collect more labels,
then keep every pair where the annotators chose the *shorter* answer and an equal number where they
chose the longer one. Now length tells the model nothing about which answer won. The price is data:
with a bias this strong, few labels survive. (We draw a fresh pool with another seed, so no held-out
pair is trained on.)
"""),
    code("""
pool = synthetic_preferences(3000, seed=7, length_bias=0.9)
chose_shorter = [p for p in pool if num_words(p.chosen) < num_words(p.rejected)]
chose_longer = [p for p in pool if num_words(p.chosen) > num_words(p.rejected)]
balanced = chose_shorter + chose_longer[:len(chose_shorter)]
print(f"{len(pool)} labelled pairs -> {len(balanced)} kept ({len(chose_shorter)} where the shorter answer won)")

rebalanced = RewardModel(tiny_backbone(seed=0), seed=0)
history = train_reward_model(rebalanced, tokenizer, balanced, seed=0, progress=False)
print(f"trained in {history.seconds:.1f} s")
for name, model in (("careful labels", models[0.0]), ("biased", biased), ("biased, rebalanced", rebalanced)):
    prefers_longer = 1 - evaluate(model, tokenizer, probe)["accuracy"]
    truth = evaluate(model, tokenizer, held_out_true)["accuracy"]
    print(f"{name:19s} probe prefers longer {prefers_longer:.0%}   held-out true-quality accuracy {truth:.3f}")
"""),
    md("""
Rebalancing helps on both measures at once, which the penalty did not. It does not get back to the
model trained on careful labels: half of the kept pairs are still labelled mostly by length (so
nearly at random with respect to quality), and we threw away most of the labels we paid for.
The best mitigation is upstream: clear annotation guidelines, checks on annotators, and pairs of
similar length where possible.
"""),
    md("""
## Explore

Move the slider to train a model with a different length bias (a few seconds the first time; each
value is cached). Watch the probe rate and the correlation, and compare the two held-out accuracies.
"""),
    code("""
from rmlearn.widgets import length_bias_explorer

length_bias_explorer(0.9)
"""),
    md("""
## Check yourself

Practice questions (not graded). Pick an answer and press **Check**.
"""),
    code("""
from rmlearn.widgets import Question, quiz

quiz([
    Question(
        "A reward model ranks 78 % of held-out pairs the way the annotators did, and those annotators also labelled its training data. What does this tell you about a length bias?",
        options=(
            "Nothing reassuring: held-out labels from the same annotators share their habits, so copying the habit also scores well.",
            "The model has no length bias, otherwise held-out accuracy would be low.",
            "The model certainly has a length bias.",
            "Held-out accuracy is useless and should never be reported.",
        ),
        answer=0,
        why=(
            "In this lesson the biased model scored well against its annotators but poorly against true quality.",
            "A biased model can agree with biased labels very well; that is exactly the trap.",
            "78 % is compatible with a model that learned quality too; you need a probe to tell.",
            "It is useful for catching many problems; it just cannot reveal a bias that the labels share.",
        ),
    ),
    Question(
        "In a length probe the better answer is always the shorter one. On what fraction of probe pairs would a model that ranks purely by true quality prefer the longer answer?",
        options=("0 %", "50 %", "100 %", "It depends on the annotators' length bias."),
        answer=0,
        why=(
            "It always picks the better answer, and on every probe pair that is the shorter one.",
            "50 % is what a coin flip would give, a model that ignores both quality and length.",
            "100 % is a model that ranks purely by length.",
            "The probe is built from true quality, not from annotators' labels, so no annotator is involved.",
        ),
    ),
    Question(
        "After subtracting a per-word penalty from every reward, the probe's 'prefers longer' rate drops from 80 % to 20 %. Why is that not enough to call the fix a success?",
        options=(
            "The probe only rewards choosing short answers, so any push towards brevity looks good there; ordinary held-out pairs must be checked too.",
            "A penalty changes the model's weights, which is not allowed.",
            "20 % is still far too high for any useful model.",
            "The probe should have been run before the penalty only.",
        ),
        answer=0,
        why=(
            "In this lesson the penalty improved the probe but lowered true-quality accuracy on ordinary pairs.",
            "The penalty is applied to scores after the model; its weights do not change.",
            "The problem is not the number itself but that the probe alone cannot tell a fix from an overcorrection.",
            "Comparing before and after is the point; the issue is what else you measure.",
        ),
    ),
    Question(
        "Why does rebalancing the training pairs (as many 'shorter answer won' as 'longer answer won') reduce the length bias?",
        options=(
            "Because length then no longer predicts which answer won, so the pairwise loss gains nothing from scoring length.",
            "Because it removes every wrongly labelled pair.",
            "Because it makes the responses in the data shorter.",
            "Because it gives the model more training pairs.",
        ),
        answer=0,
        why=(
            "The model learns whatever separates chosen from rejected; with balanced lengths, length separates nothing.",
            "Many kept pairs are still labelled by length, so still often wrong about quality.",
            "The responses are unchanged; only which pairs are kept changes.",
            "It gives fewer pairs: most labels are thrown away.",
        ),
    ),
])
"""),
    md("""
## Next

Lesson 06 looks inside a response: how much each segment adds to the score. The graded exercise for
lessons 05–06 is **`ps3_bias_and_segments`** (in `exercises/source/ps3_bias_and_segments/`).
"""),
]


# ---------------------------------------------------------------------------------------------
# 06 · Segment scores
# ---------------------------------------------------------------------------------------------

LESSON_06 = [
    md("""
# 06 · Segment scores

A reward model gives one number for a whole response. Often we want to know *where* in the response
the good and the bad parts are: which sentence earned the reward and which one cost it. A simple
answer: score the response after each segment, and credit each segment with the change it caused.

**What you will learn**

- cumulative scores: the reward of the text so far, after each segment;
- segment score = the change in the cumulative score (`segment_scores`), and the role of the baseline;
- ranking segments by their contribution (`rank_segments`);
- what the course's reward model credits, sentence by sentence and phrase by phrase (`cumulative_scores`);
- training on segment scores as a regression problem (`segment_regression_loss`), and why regression
  cares about more than the order.
"""),
    md("""
## Cumulative scores

Say a response is written in four segments, and after each one we ask the reward model for the score
of everything written so far. Call these cumulative scores s₁, s₂, s₃, s₄.
"""),
    code("""
%matplotlib inline
import torch

from rmlearn import (course_tokenizer, cumulative_scores, pairwise_loss, rank_segments, ranking_to_pairs,
                     segment_regression_loss, segment_scores, support_pairs)
from rmlearn.data import phrase_kind
from rmlearn.plots import plot_segments
from rmlearn.widgets.segments import split_sentences
from rmlearn.zoo import trained_reward_model

cumulative = [0.3, 1.0, 0.6, 1.4]   # s_1 .. s_4, made-up numbers for now
"""),
    md("""
## A segment's score is the change it caused

Segment k's own score is s_k − s_(k−1). The first segment is compared with a *baseline* s₀, the score
before anything was written (0 unless we say otherwise).
"""),
    code("""
scores = segment_scores(cumulative)
print("segment scores:", [round(s, 3) for s in scores.tolist()])
print("their sum:", round(scores.sum().item(), 3), "= final score - baseline:", cumulative[-1] - 0.0)
"""),
    md("""
The sum of the segment scores always equals the final score minus the baseline: the differences
telescope. The baseline only changes the first segment's credit:
"""),
    code("""
print("baseline 0.5:", [round(s, 3) for s in segment_scores(cumulative, baseline=0.5).tolist()])
"""),
    md("""
## Ranking segments

`rank_segments` lists segment numbers (1-based) from the largest contribution to the smallest.
Segment 3 lowered the score, so it comes last. In the plot the bars are the segment scores and the
line is the cumulative score; the label over each bar is its rank.
"""),
    code("""
print("order, largest contribution first:", rank_segments(cumulative))
plot_segments(cumulative)
"""),
    md("""
## The reward model, sentence by sentence

Now real numbers. `cumulative_scores(model, tokenizer, prompt, segments)` scores the first sentence,
then the first two, and so on, each as a complete response. As a baseline we score an empty response.
"""),
    code("""
tokenizer = course_tokenizer()
model = trained_reward_model()

example = support_pairs()[3]    # a delayed order, answered in three sentences
prompt, response = example.prompt, example.chosen
sentences = split_sentences(response)
cum = cumulative_scores(model, tokenizer, prompt, sentences)
baseline = model.score([prompt], [""], tokenizer)[0].item()
for k, (text, s, d) in enumerate(zip(sentences, cum.tolist(), segment_scores(cum, baseline).tolist()), 1):
    print(f"{k}. s_k = {s:+.3f}   segment score {d:+.3f}   {text}")
print("baseline (empty response):", round(baseline, 3))
print("last cumulative = score of the whole response:", round(model.score([prompt], [response], tokenizer)[0].item(), 3))
plot_segments(cum, baseline, labels=sentences)
"""),
    md("""
Each sentence of this helpful answer raises the score. The first one is measured from the empty
answer, which the model scores very low, so even "Let me check." earns a lot: the baseline decides
how much credit the first segment gets. The explorer at the end lets you try the other support
answers, including the rejected ones.
"""),
    md("""
## Phrase by phrase, where we know the truth

The synthetic data of lesson 05 has a hidden rule: helpful phrases are good, unhelpful ones bad,
filler neutral. Split a synthetic response at its commas (`sep=", "`) and see whether the model's
credit follows the rule.
"""),
    code("""
phrases = ["thanks for writing", "click forgot password", "i cannot help", "kind regards",
           "choose a new password."]
question = "How do I reset my password?"
cum = cumulative_scores(model, tokenizer, question, phrases, sep=", ")
empty = model.score([question], [""], tokenizer)[0].item()
credit = segment_scores(cum, empty)
for k, (phrase, d) in enumerate(zip(phrases, credit.tolist()), 1):
    print(f"{k}. {d:+7.3f}   {phrase_kind(question, phrase.rstrip('.')):9s}  {phrase}")
print("order, largest contribution first:", rank_segments(cum, empty))
"""),
    md("""
The unhelpful phrase takes by far the biggest bite, and the first helpful phrase earns the most. The filler is not
worth zero, though: the first phrase is measured against an empty answer, which the model scores
low, and the tiny model kept a little taste for longer answers (lesson 05). A phrase's credit also
depends on what came before it, because the model reads the whole prefix. Segment scores are an
honest account of how the *model* reacts, not of the hidden rule.
"""),
    md("""
## Training on segment scores: a regression problem

Segment scores can serve as *targets*: a model that predicts a score for each segment is trained to
match them with a squared error, `segment_regression_loss(pred, target) = mean((pred − target)²)`.
Take our made-up targets from above.
"""),
    code("""
target = segment_scores([0.3, 1.0, 0.6, 1.4]).float()
print("targets:", [round(t, 2) for t in target.tolist()])

shifted = target + 0.5     # every prediction 0.5 too high: the order is perfect
print("same order?", torch.equal(shifted.argsort(descending=True), target.argsort(descending=True)))
print("regression loss:", round(segment_regression_loss(shifted, target).item(), 4))
"""),
    md("""
The order is perfect, yet the loss is not zero: regression asks for the values themselves. Compare a
ranking loss on the same predictions. The pairwise loss only sees differences, so shifting every
score by the same amount changes nothing:
"""),
    code("""
order = target.argsort(descending=True).tolist()        # segment indices, best first
better, worse = map(list, zip(*ranking_to_pairs(order)))  # all 6 (better, worse) pairs
for name, pred in (("targets", target), ("shifted", shifted)):
    print(f"pairwise loss on {name}: {pairwise_loss(pred[better], pred[worse]).item():.4f}")
"""),
    md("""
## Which segment dominates the loss?

Squared error punishes big misses much more than small ones. Here three predictions are off by
0.1 and one by 0.5:
"""),
    code("""
pred = torch.tensor([0.4, 0.2, -0.5, 0.9], requires_grad=True)
per_segment = segment_regression_loss(pred, target, reduction="none")
loss = per_segment.mean()
loss.backward()
for k in range(4):
    print(f"segment {k + 1}: target {target[k]:+.1f}  pred {pred[k].item():+.1f}  "
          f"squared error {per_segment[k].item():.3f}  gradient {pred.grad[k].item():+.3f}")
print("mean loss:", round(loss.item(), 4))
"""),
    md("""
Segment 2 holds 25 of the 28 hundredths of the loss and gets by far the largest gradient: the next
update will mostly move that prediction, upwards. (Here it is also the one in the wrong order, but a
large miss dominates whether or not it breaks the order.)
"""),
    md("""
## Explore

Type your own cumulative scores and baseline in the first tab. In the second, pick a support
response and see the reward model's credit for each sentence.
"""),
    code("""
from rmlearn.widgets import segment_explorer

segment_explorer()
"""),
    md("""
## Check yourself

Practice questions (not graded). Pick an answer and press **Check**.
"""),
    code("""
from rmlearn.widgets import Question, quiz

quiz([
    Question(
        "Cumulative scores after three segments are 0.2, 0.8 and 0.5 (baseline 0). What is the score of segment 3?",
        options=("-0.3", "0.5", "0.3", "1.5"),
        answer=0,
        why=(
            "Segment 3 changed the score from 0.8 to 0.5: 0.5 - 0.8 = -0.3.",
            "0.5 is the cumulative score after segment 3, not the change it caused.",
            "The sign matters: the score went down.",
            "That is the sum of the cumulative scores, which has no meaning here.",
        ),
    ),
    Question(
        "Cumulative scores are 1.0, 0.4, 1.1, 1.3 with baseline 0. Which segment contributed most?",
        options=("segment 1", "segment 3", "segment 4", "segment 2"),
        answer=0,
        why=(
            "Its score is 1.0 - 0 = 1.0; the others are -0.6, +0.7 and +0.2.",
            "Segment 3 adds 0.7, less than segment 1's 1.0.",
            "Segment 4 has the highest cumulative score, but it only added 0.2.",
            "Segment 2 lowered the score by 0.6; it contributed least.",
        ),
    ),
    Question(
        "Segment targets are 0.2, 0.9, -0.3, 0.4 and a model predicts 0.5, 0.8, -0.2, 0.35. Which segment contributes most to the squared-error loss?",
        options=("segment 1", "segment 2", "segment 3", "segment 4"),
        answer=0,
        why=(
            "It misses by 0.3, a squared error of 0.09; the others are 0.01, 0.01 and 0.0025.",
            "It misses by 0.1: squared error 0.01.",
            "It misses by 0.1: squared error 0.01.",
            "It misses by only 0.05: squared error 0.0025.",
        ),
    ),
    Question(
        "Every prediction is exactly 1.0 higher than its segment target. What does the regression loss do?",
        options=(
            "It is 1.0 (mean squared error), so training still pulls all predictions down.",
            "It is 0, because the predicted order is perfect.",
            "It depends on how many segments there are.",
            "It is negative, because the predictions are too high.",
        ),
        answer=0,
        why=(
            "Each error is 1.0, squared 1.0, and the mean is 1.0: regression cares about values, not only order.",
            "That is true of a ranking loss such as the pairwise loss, not of squared error.",
            "The mean of identical squared errors is the same for any number of segments.",
            "A squared error is never negative.",
        ),
    ),
])
"""),
    md("""
## Next

Lesson 07 meets the fourth model of RLHF, the value model, which gives a number at *every* token. The
graded exercise for lessons 05–06 is **`ps3_bias_and_segments`** (in
`exercises/source/ps3_bias_and_segments/`).
"""),
]


# ---------------------------------------------------------------------------------------------
# 07 · The critic
# ---------------------------------------------------------------------------------------------

LESSON_07 = [
    md("""
# 07 · The critic: the value model

RLHF trains a policy with reinforcement learning (usually PPO), and PPO needs more than a reward
model. It also needs a *value model*, or critic, that estimates at every step how much reward the
response will end up with. This lesson builds one from the reward model we already have.

**What you will learn**

- the four models of RLHF, what each one reads and what it outputs;
- why all four are the same kind of network, a Transformer decoder;
- the difference between a reward (one number for a finished response) and a value (an estimate at
  every prefix of the expected final reward);
- how `ValueModel` puts the head at every position, and how `train_value_model` teaches it from the
  reward model's scores.
"""),
    md("""
## Four models

| model | job in RLHF | reads | outputs | updated during RL? |
|---|---|---|---|---|
| **policy** | writes the responses; the model being aligned | prompt + response so far | a distribution over the next token, at every position | yes |
| **reference** | a frozen copy of the starting (SFT) policy; a KL penalty keeps the policy close to it | prompt + response so far | a distribution over the next token | no |
| **reward** | judges a finished response (lessons 01–06) | prompt + complete response + EOS | **one number** for the whole response | no (trained before RL) |
| **value** (critic) | predicts, at each step, the reward still to come, so PPO can tell a good step from a lucky one | prompt + response so far (a *state*) | **one number per position** | yes, alongside the policy |
"""),
    md("""
## Why they share one architecture

All four read the same token sequences, so they use the same tokenizer and context length. All four
need to understand language about as well as the policy writes it: a judge that reads worse than the
writer is easy to fool. The simplest way to get that is to start every model from the same pretrained
(SFT) decoder and change only the last layer: a next-token head for policy and reference, a head that
outputs one number for reward and value. In the course's code the only difference between
`RewardModel` and `ValueModel` is *where* that head is applied.
"""),
    code("""
%matplotlib inline
import copy

import torch

from IPython.display import display

from rmlearn import PASSWORD_RESET, ValueModel, course_tokenizer, support_pairs, train_value_model
from rmlearn.inputs import encode_batch
from rmlearn.plots import plot_history, plot_values
from rmlearn.pooling import last_token_index
from rmlearn.zoo import course_data, trained_reward_model

tokenizer = course_tokenizer()
reward_model = trained_reward_model()
value_model = ValueModel(copy.deepcopy(reward_model.backbone))   # start the critic from the reward model

count = lambda module: sum(p.numel() for p in module.parameters())
print(f"decoder parameters: {count(reward_model.backbone):,}")
print(f"reward head: {count(reward_model.head)} numbers, value head: {count(value_model.head)} numbers (with a bias)")
"""),
    md("""
The critic here starts from a copy of the trained reward model's decoder, a common choice in practice
(it already knows what makes a response good), with a fresh head. Both decoders give identical hidden
states until the critic is trained:
"""),
    code("""
prompt, response = PASSWORD_RESET.prompt, PASSWORD_RESET.chosen
ids, mask = encode_batch(tokenizer, [prompt], [response])   # (1, T)
with torch.no_grad():
    same = torch.equal(reward_model.hidden(ids, mask), value_model.hidden(ids, mask))
    values_before = value_model(ids, mask)[0]                 # (T,): one value per position
reward = reward_model.score([prompt], [response], tokenizer)[0].item()
print("identical hidden states:", same)
print("input shape", tuple(ids.shape), "-> reward: one number", round(reward, 3),
      "| values:", tuple(values_before.shape), "one per position")
"""),
    md("""
## Reward versus value

The **reward** r(x, y) is given once, for the complete response y to prompt x: the reward model reads
up to EOS and answers with one number.

The **value** V(s_t) is defined for every *state* s_t = (x, y₁…y_t), the prompt plus the part of the
response written so far: it is the reward the policy can expect to receive by the end, starting from
there. Early states cannot know how the response will end, so their best guess is an average; as the
response is written, the estimate should move towards the actual reward.

With the reward given only at the end (no discount, no per-token penalty), the target for every state
of a response is simply that response's final reward. That is how `train_value_model` trains the
critic: squared error between V at each state and the reward model's score.
"""),
    code("""
train, test = course_data()
data = train[:200] + support_pairs()      # 200 synthetic pairs and the 16 support pairs
history = train_value_model(value_model, reward_model, tokenizer, data, seed=0, progress=False)
print(f"{len(history)} steps in {history.seconds:.1f} s; loss {history.loss[0]:.2f} -> {history.loss[-1]:.2f}")
plot_history(history)
"""),
    md("""
The loss falls but stays well above zero, and it must: at early states the critic cannot know which
of many possible endings will follow, so it cannot match every final reward exactly.
"""),
    md("""
## Values along a response

We show the states from the end of the prompt to EOS, before and after training, with the reward
model's score of the complete response as a dashed line.
"""),
    code("""
def values_along(model, prompt, response):
    \"\"\"Tokens and values V(state) from the last prompt token to EOS.\"\"\"
    ids, mask = encode_batch(tokenizer, [prompt], [response])
    start = len(tokenizer(prompt)["input_ids"]) - 1
    with torch.no_grad():
        values = model(ids, mask)[0, start:]
    return [tokenizer.decode([i]) for i in ids[0, start:].tolist()], values


for label, text in (("chosen", PASSWORD_RESET.chosen), ("rejected", PASSWORD_RESET.rejected)):
    tokens, after = values_along(value_model, prompt, text)
    before = values_before[-len(tokens):] if text == response else None
    r = reward_model.score([prompt], [text], tokenizer)[0].item()
    curves = {"after training": after} if before is None else {"before training": before, "after training": after}
    print(f"{label}: reward {r:+.3f}, value at the first state {after[0]:+.3f}, at EOS {after[-1]:+.3f}")
    display(plot_values(tokens, curves, {"reward r(x, y)": r}))
"""),
    md("""
Before training the critic says roughly the same small number everywhere: its head is new. After
training, look at the first state. It is the same for both responses (only the prompt has been read),
so the critic gives both the same value: a guess made before the answer is known. Along the helpful
answer the value climbs within a few tokens towards its high reward and stays there. Along the curt
answer it wobbles and ends somewhat above the real reward: a tiny critic trained for a few seconds
is a rough estimate, and PPO has to work with such estimates.
"""),
    md("""
## Does the critic predict the reward on new responses?

At EOS the whole response is known, so there V should match the reward. We check on held-out
responses the critic never saw (`last_token_index` finds each row's EOS position).
"""),
    code("""
prompts = [p.prompt for p in test[:50] for _ in range(2)]
responses = [r for p in test[:50] for r in (p.chosen, p.rejected)]
ids, mask = encode_batch(tokenizer, prompts, responses)   # (N, T)
rewards = reward_model.score(prompts, responses, tokenizer)  # (N,)


def value_at_eos(model):
    with torch.no_grad():
        return model(ids, mask)[torch.arange(len(prompts)), last_token_index(mask)]   # (N,)


v = value_at_eos(value_model)
print(f"held-out: correlation of V(EOS) with the reward {torch.corrcoef(torch.stack([v, rewards]))[0, 1]:.3f}, "
      f"mean squared error {((v - rewards) ** 2).mean():.2f} (reward variance {rewards.var():.2f})")
"""),
    md("""
## Does starting from the reward model matter?

Train a second critic the same way, but from a randomly initialised decoder instead of the reward
model's, and compare on the same held-out responses.
"""),
    code("""
from rmlearn import tiny_backbone

fresh = ValueModel(tiny_backbone(seed=0))
train_value_model(fresh, reward_model, tokenizer, data, seed=0, progress=False)
v_fresh = value_at_eos(fresh)
for name, values in (("from the reward model", v), ("from scratch", v_fresh)):
    corr = torch.corrcoef(torch.stack([values, rewards]))[0, 1]
    print(f"critic {name:22s} correlation {corr:.3f}   mean squared error {((values - rewards) ** 2).mean():.2f}")
"""),
    md("""
With the same data and steps, the critic that starts from a decoder that already learned what matters
predicts the reward better. At full scale the argument is the same: reuse the pretrained
representation instead of learning language from a few thousand labels.
"""),
    md("""
## Check yourself

Practice questions (not graded). Pick an answer and press **Check**.
"""),
    code("""
from rmlearn.widgets import Question, quiz

quiz([
    Question(
        "A finished response gets reward 5.0, but at the first state of that response (only the prompt read) the trained critic said 1.2. What does this show?",
        options=(
            "Nothing is wrong: before any answer is written, the value is a guess over all the answers that could follow, not this one's reward.",
            "The critic is broken: its value must equal the reward at every state.",
            "The reward model is broken: it should have given 1.2.",
            "The value should be 0 at the first state, since no reward has been given yet.",
        ),
        answer=0,
        why=(
            "This is what we saw in the lesson: both answers start from the same value, then move towards their own rewards.",
            "Only at EOS, when the whole response is known, should the value come close to the reward.",
            "The reward model judges the complete response; the critic's early guess says nothing about it.",
            "The value counts reward still to come, and all of it (5.0 here) is still to come.",
        ),
    ),
    Question(
        "During the reinforcement-learning phase, which models are updated?",
        options=("the policy and the value model", "only the policy", "all four", "the reward and the value model"),
        answer=0,
        why=(
            "The policy learns to get more reward; the critic keeps learning to predict it for the changing policy.",
            "The critic must be trained too, since its predictions depend on how the policy now behaves.",
            "The reference stays frozen as an anchor, and the reward model stays fixed as the judge.",
            "The reward model is trained before RL and then frozen.",
        ),
    ),
    Question(
        "In this course, what is the difference between RewardModel and ValueModel built on the same decoder?",
        options=(
            "Where the one-number head is applied: at the EOS position only, or at every position.",
            "They use different tokenizers.",
            "The value model has more decoder layers.",
            "The reward model outputs a distribution over the vocabulary.",
        ),
        answer=0,
        why=(
            "Same decoder, same kind of head; the reward reads one position, the critic every position.",
            "Both read the same token sequences with the same tokenizer, which is one reason to share the architecture.",
            "The decoder is the same; the critic here even starts as a copy of the reward model's.",
            "Only the policy and the reference output next-token distributions.",
        ),
    ),
    Question(
        "A response gets reward -1.5, given only at the end, without discount. What target does train_value_model use for the state halfway through this response?",
        options=("-1.5", "-0.75", "0", "It depends on how many tokens are left."),
        answer=0,
        why=(
            "The reward still to come from any state of this response is its final reward, -1.5.",
            "Rewards are not spread over the tokens; the whole -1.5 arrives at the end.",
            "0 would be right only if no reward were given at the end.",
            "Without a discount, the number of remaining tokens does not change the target.",
        ),
    ),
])
"""),
    md("""
## Next

You have seen the whole reward side of RLHF: from text to one number, pooling, training from
comparisons and rankings, biases, segment scores and the critic. The graded exercise for this lesson
is **`ps4_value_model`** (in `exercises/source/ps4_value_model/`).
"""),
]


def main() -> None:
    for name, cells in (("05_learning_the_wrong_thing", LESSON_05), ("06_segment_scores", LESSON_06),
                        ("07_the_critic", LESSON_07)):
        path = LESSONS / f"{name}.ipynb"
        nbformat.write(mark_slides(notebook(cells)), path)
        print("wrote", path)


if __name__ == "__main__":
    main()
