"""Write lessons/01_…04_ (outputs cleared) from the cell sources below.

    python scripts/build_lessons_01_04.py

Edit the cells here and rerun, or edit the notebooks in Jupyter and stop using this script; do not
do both. Each lesson is a list of ("md" | "code", source) cells; the first code cell gets
``%matplotlib inline`` so the Figures returned by ``rmlearn.plots`` display in the notebook.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import nbformat
from mark_slides import mark_slides
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

LESSONS = Path(__file__).resolve().parents[1] / "lessons"
def build(path: Path, cells: list) -> None:
    nb = new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    first_code = True
    for kind, src in cells:
        src = textwrap.dedent(src).strip("\n")
        if kind == "code" and first_code:  # figures returned by rmlearn.plots display inline
            src, first_code = "%matplotlib inline\n" + src, False
        nb.cells.append(new_markdown_cell(src) if kind == "md" else new_code_cell(src))
    for i, cell in enumerate(nb.cells):
        cell.id = f"c{i:02d}"
    nbformat.validate(nb)
    nbformat.write(mark_slides(nb), path)


def quiz_cell(questions: list) -> tuple[str, str]:
    """questions: list of (text, [options], answer_index, [why...])."""
    lines = ["from rmlearn.widgets import Question, quiz", "", "quiz(["]
    for text, options, answer, why in questions:
        lines.append("    Question(")
        lines.append(f"        {text!r},")
        lines.append("        options=(" + "".join(f"\n            {o!r}," for o in options) + "\n        ),")
        lines.append(f"        answer={answer},")
        lines.append("        why=(" + "".join(f"\n            {w!r}," for w in why) + "\n        ),")
        lines.append("    ),")
    lines.append("])")
    return ("code", "\n".join(lines))


def lesson_01() -> list:
    return [
    ("md", """
    # 01 · From text to one number

    A reward model reads a prompt together with one candidate response and answers with a single real
    number: how much a person would probably like that response. In this lesson we follow one example
    through the model step by step and look at the tensor shapes on the way.

    **What you will learn**

    - how a prompt and a response become one token sequence that ends with an end-of-sequence (EOS) token;
    - what the decoder gives back: one hidden-state vector per token;
    - why the reward model keeps only the vector at the EOS position, and how a linear head turns it into the reward;
    - that the reward is a continuous score you compare, not a yes/no verdict;
    - how to put a real pretrained decoder under the same code by changing one line.
    """),
    ("md", """
    ## The running example

    The course ships a small set of customer-support preferences. Its first pair is a password-reset
    question with a detailed answer (the one people preferred) and a curt one.
    """),
    ("code", """
    import torch

    from rmlearn import PASSWORD_RESET, RewardModel, course_tokenizer, pool, tiny_backbone
    from rmlearn.inputs import encode, pad_batch

    pair = PASSWORD_RESET
    print("prompt:  ", pair.prompt)
    print("chosen:  ", pair.chosen)
    print("rejected:", pair.rejected)
    """),
    ("md", """
    ## Step 1 · Text → token ids: `[prompt ; response ; EOS]`

    The model only sees integers. `encode` tokenizes the prompt, then a newline plus the response, and
    appends the EOS token. The course tokenizer is small (1024 tokens) and keeps EOS (id 0) and PAD
    (id 1) apart, which will matter in lesson 02.
    """),
    ("code", """
    tokenizer = course_tokenizer()
    ids = encode(tokenizer, pair.prompt, pair.chosen)
    tokens = [tokenizer.decode([i]) for i in ids]

    print(len(ids), "tokens")
    print("first ten:", list(zip(ids[:10], tokens[:10])))
    print("last five:", list(zip(ids[-5:], tokens[-5:])))
    print("EOS id:", tokenizer.eos_token_id, "  PAD id:", tokenizer.pad_token_id)
    """),
    ("md", """
    ## Step 2 · A batch tensor

    Models work on batches. One sequence makes a batch of size B = 1 and length T; the attention mask
    marks real tokens with 1 (there is no padding yet).
    """),
    ("code", """
    input_ids, attention_mask = pad_batch([ids], pad_id=tokenizer.pad_token_id)
    print("input_ids     ", tuple(input_ids.shape), "  (B, T)")
    print("attention_mask", tuple(attention_mask.shape), "  (B, T)")
    """),
    ("md", """
    ## Step 3 · The decoder: one hidden state per token

    `tiny_backbone()` is a GPT-2-style decoder with 2 layers and width D = 64, randomly initialised
    (it trains in seconds on a laptop). `RewardModel` wraps it and adds a head. `model.hidden` runs the
    decoder and returns the final-layer state of every position.
    """),
    ("code", """
    model = RewardModel(tiny_backbone(seed=0), seed=0)

    with torch.no_grad():
        hidden = model.hidden(input_ids, attention_mask)
    print("hidden", tuple(hidden.shape), "  (B, T, D)")
    """),
    ("md", """
    ## Step 4 · Keep the state at EOS

    We need one vector per sequence. The decoder is causal: position *t* can only look at tokens
    1..*t*. The EOS token comes last, so its state is the only one computed after reading the whole
    prompt and the whole response. `pool(..., "eos")` picks it (lesson 02 compares it with the
    alternatives).
    """),
    ("code", """
    h_eos = pool(hidden, attention_mask, "eos")
    print("h_eos", tuple(h_eos.shape), "  (B, D)")
    print("same as the last column here (no padding):", torch.equal(h_eos, hidden[:, -1]))
    """),
    ("md", """
    ## Step 5 · A linear head: 64 numbers → 1 number

    The head is a single weight vector **w** (no bias): reward = **w** · h_EOS. Calling the model runs
    steps 3–5 in one go, and gives the same number.
    """),
    ("code", """
    print(model.head)
    with torch.no_grad():
        reward = model.head(h_eos).squeeze(-1)
        print("reward", tuple(reward.shape), "  (B,)", reward)
        print("model(input_ids, attention_mask):", model(input_ids, attention_mask))
    """),
    ("md", """
    ## All steps at once: `model.score`

    `score` builds `[prompt ; response ; EOS]` itself, pads, and returns one reward per response.
    This model is untrained, so its numbers are arbitrary small values: the head has not learned
    which directions of the hidden state mean "helpful".
    """),
    ("code", """
    model.score(pair.prompt, [pair.chosen, pair.rejected], tokenizer)
    """),
    ("md", """
    ## A trained model

    `rmlearn.zoo.trained_reward_model()` trains the same tiny model on a few hundred preference pairs
    (a few seconds; lesson 04 shows the training) and caches it. Now the detailed answer gets a clearly
    higher score than the curt one.
    """),
    ("code", """
    from rmlearn.zoo import trained_reward_model

    trained = trained_reward_model()
    r_chosen, r_rejected = trained.score(pair.prompt, [pair.chosen, pair.rejected], tokenizer).tolist()
    print(f"r(chosen)   = {r_chosen:+.3f}")
    print(f"r(rejected) = {r_rejected:+.3f}")
    """),
    ("md", """
    ## A score, not a label

    The reward is a real number with no fixed scale: it is not "good = 1, bad = 0". What matters is
    how scores compare: a response scoring higher is predicted to be preferred, and a larger gap means
    a more confident prediction. Below, every response of the support set is scored (green: the answer
    people preferred in its pair, red: the other one). Even on this tidy set, where the two kinds
    separate cleanly, each response gets its own value: the model says *how* good, not just which side.
    """),
    ("code", """
    from rmlearn import support_pairs
    from rmlearn.plots import plot_scores

    pairs = support_pairs()
    responses = [p.chosen for p in pairs] + [p.rejected for p in pairs]
    prompts = [p.prompt for p in pairs] * 2
    scores = trained.score(prompts, responses, tokenizer)
    order = scores.argsort(descending=True).tolist()
    colors = ["C2" if i < len(pairs) else "C3" for i in order]  # green: people preferred it
    plot_scores(scores[order], [responses[i] for i in order], colors=colors)
    """),
    ("code", """
    print(f"{len(torch.unique(scores.round(decimals=2)))} different values among {len(scores)} responses")
    print(f"range: {scores.min():.2f} … {scores.max():.2f}")
    """),
    ("md", """
    ## Swapping in a real decoder is one line

    Nothing above depends on the tiny model. `RewardModel` wraps any Hugging Face decoder, so with a
    downloaded checkpoint and its tokenizer you would write (shown as text: the course never downloads
    anything):

    ```python
    from transformers import AutoTokenizer
    from rmlearn import RewardModel, load_backbone

    tokenizer = AutoTokenizer.from_pretrained("path/or/hub-id")                # its own tokenizer
    model = RewardModel(load_backbone("path/or/hub-id"))                       # the one changed line
    ```

    The head starts random either way; training on preference pairs (lessons 03–04) is what makes
    the number meaningful. A real tokenizer must define EOS and PAD; lesson 02 explains what goes wrong
    when they are the same token.
    """),
    ("md", """
    ## Check yourself

    Practice questions (not graded). Pick an answer and press **Check**.
    """),
    quiz_cell([
        ("A reward model reads a 30-token sequence with a decoder of width 64. What does its linear head receive for that sequence?",
         ["a 30 × 64 matrix", "one vector of 64 numbers", "30 numbers, one per token", "a single number"],
         1,
         ["The decoder produces a 30 × 64 matrix, but pooling keeps only one of its rows before the head.",
          "The state at EOS (64 numbers) goes into the head, which maps it to one reward.",
          "That is what you get by applying the head at every position (lesson 02's token scores), not the reward.",
          "A single number is what the head returns, not what it receives."]),
        ("For one prompt, the trained model gives response A a reward of 1.3 and response B a reward of 1.1. What can you conclude?",
         ["Both responses are good, because both rewards are positive.",
          "The model mildly prefers A; the values only mean something relative to each other.",
          "A is labelled correct and B incorrect.",
          "B is better, because its score is closer to 1."],
         1,
         ["There is no fixed zero: adding a constant to every score would change nothing during training (lesson 03).",
          "Training only ever compares scores, so a small gap means a weak preference for A.",
          "The reward model gives continuous scores, not labels.",
          "1 is not a target value; the scale is arbitrary."]),
        ("Why does the input end with an EOS token?",
         ["Its hidden state is computed after the whole prompt and response have been read, so the reward is read there.",
          "The tokenizer cannot encode text without it.",
          "It makes the head output a probability between 0 and 1.",
          "It separates the prompt from the response."],
         0,
         ["With causal attention only the last position has seen every token.",
          "The tokenizer encodes text fine without it; rmlearn appends it on purpose.",
          "The head is linear; nothing squashes its output into [0, 1].",
          "A newline separates prompt and response; EOS marks the end of the whole sequence."]),
        ("You want a real pretrained decoder under the reward model instead of the tiny one. What changes?",
         ["The RewardModel class must be rewritten for the new architecture.",
          "Nothing: the tiny model's trained head works on any backbone.",
          "The pairwise loss must be replaced.",
          "The backbone (and its tokenizer) you pass in; the head is then trained on preferences."],
         3,
         ["RewardModel only needs a decoder that returns last_hidden_state, which every Hugging Face decoder does.",
          "The head's 64 weights fit only the tiny model's 64-dimensional states.",
          "The loss works on scores and does not care which decoder produced them.",
          "load_backbone gives the decoder; its hidden size sets the head's size, and training gives the head meaning."]),
    ]),
    ("md", """
    ## Next

    Lesson 02 asks *which* hidden state to keep and what goes wrong with padding. The graded exercise
    for lessons 01–02 is **`ps1_reward_scores`** (in `exercises/source/ps1_reward_scores/`).
    """),
    ]


def lesson_02() -> list:
    return [
    ("md", """
    # 02 · Which hidden state? EOS vs mean pooling

    The decoder returns one vector per token, but the head needs one vector per sequence. Which one
    should it be? This lesson compares three answers: the state at EOS, the average of all states, and
    "whatever sits in the last column". The last one looks harmless and is a real bug.

    **What you will learn**

    - why causal attention makes the EOS position the only one that has read the whole text;
    - how mean pooling waters the response down with prompt and filler tokens, and depends on length;
    - why the naive `hidden[:, -1]` scores a padding token under right padding, and works under left padding;
    - how PAD = EOS fools Hugging Face's sequence-classification heads, and how rmlearn avoids it;
    - how to explore all of this with `pooling_explorer`.
    """),
    ("code", """
    import torch

    from rmlearn import PASSWORD_RESET, course_tokenizer, pool
    from rmlearn.inputs import encode, pad_batch
    from rmlearn.plots import plot_token_scores
    from rmlearn.widgets.pooling import pooling_view
    from rmlearn.zoo import trained_reward_model

    tokenizer = course_tokenizer()
    model = trained_reward_model()  # the tiny model, trained with EOS pooling
    pair = PASSWORD_RESET
    """),
    ("md", """
    ## Causal attention: each position sees only its past

    Take two responses that differ only in their last word. If attention is causal, every hidden state
    *before* the first differing token must be identical in both, and only later states may change.
    """),
    ("code", """
    a = encode(tokenizer, pair.prompt, "Click 'Forgot password' on the login page.")
    b = encode(tokenizer, pair.prompt, "Click 'Forgot password' on the login screen.")
    with torch.no_grad():
        h_a = model.hidden(torch.tensor([a]))[0]  # (T_a, D)
        h_b = model.hidden(torch.tensor([b]))[0]  # (T_b, D)

    first = next(t for t, (x, y) in enumerate(zip(a, b)) if x != y)
    n = min(len(a), len(b))
    change = (h_a[:n] - h_b[:n]).abs().max(dim=-1).values  # (n,) largest change per position
    for t in range(first - 3, n):
        print(f"position {t:2d} {tokenizer.decode([a[t]])!r:>10}  max |h_a - h_b| = {change[t]:.4f}")
    print("EOS states differ by", f"{(h_a[-1] - h_b[-1]).abs().max():.4f}")
    """),
    ("md", """
    Positions before the edit do not move at all; only the edited word and what follows change. So a
    state in the middle of the sequence knows nothing about the rest of the response. The EOS state,
    computed last, is the only one that depends on every token.

    ## What the head says at every position

    Apply the head to every hidden state and you get what each *prefix* would score
    (`model.token_scores`). The model was trained to read only the EOS column; the marks show which
    position each pooling reads.
    """),
    ("code", """
    view = pooling_view(model, tokenizer, pair.prompt, pair.chosen)
    print({how: round(score, 3) for how, score in view.scores.items()})
    plot_token_scores(view.tokens, view.token_scores, view.reads, view.scores)
    """),
    ("md", """
    ## Mean pooling dilutes the response

    Mean pooling averages the states of all real tokens. The prompt's positions are part of that
    average, and (causal attention again) they are *identical* for two responses to the same prompt. A
    longer prompt therefore means a larger, shared part of the average, and the difference between two
    responses shrinks.

    Below, the same two answers get a longer and longer prompt (extra context sentences). Both gaps
    fall, partly because the tiny model never saw prompts this long, but the mean-pooled gap falls far
    faster: most of what it averages is the shared prompt.
    """),
    ("code", """
    context = "I have had an account with you for many years and I use it every day. "
    print(" extra   tokens   response share   EOS gap   mean gap")
    for k in [0, 1, 2, 4, 8]:
        prompt = context * k + pair.prompt
        good = pooling_view(model, tokenizer, prompt, pair.chosen)
        bad = pooling_view(model, tokenizer, prompt, pair.rejected)
        n_prompt = len(encode(tokenizer, prompt, "")) - 2  # prompt tokens (without newline and EOS)
        share = 1 - n_prompt / good.num_real
        eos_gap = good.scores["eos"] - bad.scores["eos"]
        mean_gap = good.scores["mean"] - bad.scores["mean"]
        print(f"{k:6d} {good.num_real:8d} {share:14.0%} {eos_gap:9.2f} {mean_gap:10.2f}")
    """),
    ("md", """
    The same averaging makes mean pooling length-sensitive: adding neutral filler words to a response
    shifts its mean towards whatever the filler tokens score. Try the **Filler words** slider in the
    explorer at the end of this lesson.

    ## The padding bug of `hidden[:, -1]`

    Batches need equal lengths, so shorter sequences are padded. A common shortcut reads "the last
    token" as `last_hidden_state[:, -1, :]`. With **right** padding, the last column of a short
    sequence is a PAD token, not its EOS.
    """),
    ("code", """
    seqs = [encode(tokenizer, pair.prompt, pair.chosen), encode(tokenizer, pair.prompt, pair.rejected)]
    input_ids, attention_mask = pad_batch(seqs, tokenizer.pad_token_id, side="right")
    print("lengths", [len(s) for s in seqs], "→ batch", tuple(input_ids.shape))
    print("last column holds:", [tokenizer.decode([i]) for i in input_ids[:, -1].tolist()])

    with torch.no_grad():
        hidden = model.hidden(input_ids, attention_mask)  # (B, T, D)
        naive = model.head(hidden[:, -1, :]).squeeze(-1)  # the shortcut: always the last column
        eos = model.head(pool(hidden, attention_mask, "eos")).squeeze(-1)  # the last *real* token
    alone = torch.cat([model.score(pair.prompt, r, tokenizer) for r in (pair.chosen, pair.rejected)])
    print("scored one at a time:", alone)
    print("EOS pooling in batch:", eos)
    print("hidden[:, -1]       :", naive)
    """),
    ("md", """
    The long (chosen) answer fills the batch, so its last column *is* its EOS and both methods agree.
    The short (rejected) answer's last column is padding: the naive score is whatever the head makes
    of a PAD token sitting after the text, not the model's judgement of the answer. Scored alone (no
    padding) the same answer gets its real score, so with this shortcut a response's reward depends
    on which other responses happen to share its batch.
    `pool(hidden, mask, "last")` is that shortcut, kept in rmlearn so you can see it fail.

    With **left** padding the real tokens are pushed to the right, every row ends with its EOS, and the
    shortcut happens to work. (rmlearn counts positions over real tokens only, so left padding gives
    the same scores too.)
    """),
    ("code", """
    input_ids, attention_mask = pad_batch(seqs, tokenizer.pad_token_id, side="left")
    print("last column holds:", [tokenizer.decode([i]) for i in input_ids[:, -1].tolist()])
    with torch.no_grad():
        hidden = model.hidden(input_ids, attention_mask)
        print("hidden[:, -1] with left padding:", model.head(pool(hidden, attention_mask, "last")).squeeze(-1))
        print("EOS pooling with left padding:  ", model.head(pool(hidden, attention_mask, "eos")).squeeze(-1))
    """),
    ("md", """
    ## The PAD = EOS pitfall

    Many GPT-2-style tokenizers have no PAD token, and a common fix is `tokenizer.pad_token =
    tokenizer.eos_token`. Hugging Face's `GPT2ForSequenceClassification` (what TRL's reward trainer
    uses) finds "the last real token" by comparing ids with `pad_token_id`. If PAD and EOS share an id,
    the EOS we appended looks like padding and the model reads the token *before* it.

    To see it, we build such a classifier on the tiny configuration and wrap it with
    `RewardModel.from_sequence_classifier`, which shares its weights (the same decoder and head).
    """),
    ("code", """
    import copy

    from transformers import GPT2ForSequenceClassification

    from rmlearn import RewardModel, tiny_backbone

    config = copy.deepcopy(tiny_backbone(seed=0).config)
    config.num_labels = 1
    config.pad_token_id = tokenizer.eos_token_id  # the pitfall: PAD and EOS share id 0
    torch.manual_seed(0)
    classifier = GPT2ForSequenceClassification(config).eval()
    shared = RewardModel.from_sequence_classifier(classifier)  # same weights, EOS pooling by mask

    ids = torch.tensor([encode(tokenizer, pair.prompt, pair.rejected)])  # (1, T), ends with EOS
    mask = torch.ones_like(ids)
    with torch.no_grad():
        per_position = shared.token_scores(ids, mask)[0]  # (T,)
        print("transformers, PAD = EOS:", classifier(input_ids=ids, attention_mask=mask).logits.item())
        print("head at the token before EOS:", per_position[-2].item(), repr(tokenizer.decode([ids[0, -2].item()])))
        print("head at EOS (rmlearn):       ", per_position[-1].item(), "=", shared(ids, mask).item())
    """),
    ("md", """
    The classifier's output equals the head at the token before EOS. With a distinct PAD id it reads
    the EOS again:
    """),
    ("code", """
    classifier.config.pad_token_id = tokenizer.pad_token_id  # a separate <|pad|> token (id 1)
    with torch.no_grad():
        print("transformers, PAD ≠ EOS:", classifier(input_ids=ids, attention_mask=mask).logits.item())
    """),
    ("md", """
    rmlearn never looks for padding by comparing ids: `pad_batch` builds the attention mask from each
    sequence's length, and pooling uses the mask. Even with `pad_id` equal to the EOS id (0 here), the
    real EOS stays marked as a real token:
    """),
    ("code", """
    pad_batch([[5, 6, 0], [7, 0]], pad_id=0, side="right")
    """),
    ("md", """
    The course tokenizer has separate EOS and PAD tokens. With a tokenizer where they coincide,
    rmlearn still reads the right position and warns you once.

    ## Explore

    Pick an example or type your own, then:

    - add **Padding** with side *right*: the orange ✕ (`last`) moves onto a grey PAD position and its score changes, while the EOS score stays put;
    - switch **Pad side** to *left*: `last` and `eos` agree again;
    - add **Filler words**: watch the mean-pooled score drift as the average takes in more filler.
    """),
    ("code", """
    from rmlearn.widgets import pooling_explorer

    pooling_explorer(model, tokenizer)
    """),
    ("md", """
    ## Check yourself
    """),
    quiz_cell([
        ("In a decoder with causal attention, which position's hidden state depends on every token of the response?",
         ["the first prompt token", "the newline between prompt and response", "the final EOS token", "all positions equally"],
         2,
         ["The first token can only attend to itself.",
          "The newline comes before the response, so it has not read any of it.",
          "EOS is computed last, after every prompt and response token.",
          "Earlier positions cannot look ahead; only the last one has seen everything."]),
        ("A batch is padded on the right and the reward is read from hidden[:, -1]. What is scored for the shortest sequence in the batch?",
         ["its EOS token", "a padding position", "the average of its tokens", "its first token"],
         1,
         ["Its EOS sits before the padding, not in the last column.",
          "The last column of a right-padded short row is PAD, so the head scores padding.",
          "Nothing is averaged; one column is taken.",
          "Column −1 is the end of the row, not its start."]),
        ("Why can setting PAD = EOS break GPT2ForSequenceClassification's reward?",
         ["It finds the last token that is not PAD by comparing ids, so the real EOS is taken for padding and the token before it is read.",
          "The EOS embedding is set to zero.",
          "The tokenizer drops the EOS token.",
          "The model can no longer process batches."],
         0,
         ["Comparing ids cannot tell a real EOS from padding when they share an id.",
          "Embeddings are not changed by choosing a pad id.",
          "The tokenizer still appends EOS; the classifier just skips it.",
          "Batches run fine; they are read at the wrong position."]),
        ("The prompt grows much longer while two responses stay the same. What happens to the gap between their mean-pooled scores?",
         ["It grows.", "It shrinks towards zero.", "It stays exactly the same.", "It always changes sign."],
         1,
         ["More shared tokens cannot add a difference between the two.",
          "The shared prompt positions (identical for both) make up more and more of each average.",
          "The averages change because each one includes more prompt positions.",
          "Nothing forces a sign change; the difference is just diluted."]),
    ]),
    ("md", """
    ## Next

    Lesson 03 turns to training: how a reward model learns from comparisons. The graded exercise for
    lessons 01–02 is **`ps1_reward_scores`** (in `exercises/source/ps1_reward_scores/`).
    """),
    ]


def lesson_03() -> list:
    return [
    ("md", """
    # 03 · Learning from comparisons

    A reward model needs training data that says which responses are better. This lesson explains why
    that data comes as comparisons, and takes apart the loss that learns from them.

    **What you will learn**

    - why annotators compare two responses instead of rating each one;
    - the pairwise loss −log σ(r_chosen − r_rejected), its shape and its gradient;
    - what a margin does;
    - that only *differences* of scores are learned: adding a constant to every score changes nothing;
    - how a centering penalty pins down the otherwise free overall level of the scores.
    """),
    ("md", """
    ## Why compare instead of rate?

    Ask ten people to rate an answer from 1 to 10 and you get ten private scales: one person's 6 is
    another's 8, and the same person drifts over an afternoon. Ask them which of *two* answers to the
    same question is better and they agree far more often, and answer faster. So preference data is a
    list of triples: a prompt, the response people preferred (*chosen*) and the other one (*rejected*).
    """),
    ("code", """
    import torch

    from rmlearn import centering_penalty, pairwise_loss, support_pairs
    from rmlearn.plots import plot_pairwise_loss

    for p in support_pairs()[2:4]:
        print("prompt:  ", p.prompt)
        print("chosen:  ", p.chosen)
        print("rejected:", p.rejected, "\\n")
    """),
    ("md", """
    ## The loss

    The model scores both responses, r_c = r(x, y_chosen) and r_r = r(x, y_rejected). The
    Bradley–Terry model turns the gap into a probability that a person prefers the chosen one,
    P = σ(r_c − r_r), and training maximises the log of that probability over all pairs:

    loss = −log σ(r_c − r_r)

    Here it is for three pairs whose scores are already in the right order (the numbers from the
    course page's own example):
    """),
    ("code", """
    r_chosen = torch.tensor([2.1, 3.4, 1.8])
    r_rejected = torch.tensor([0.5, 1.2, 0.9])

    print("per pair:", pairwise_loss(r_chosen, r_rejected, reduction="none"))
    print("mean:    ", pairwise_loss(r_chosen, r_rejected))
    """),
    ("md", """
    The pair with the smallest gap (1.8 vs 0.9) costs the most. The loss is exactly −log of the
    preference probability, so exp(−loss) gives that probability back:
    """),
    ("code", """
    print("σ(r_c − r_r):", torch.sigmoid(r_chosen - r_rejected))
    print("exp(−loss):  ", torch.exp(-pairwise_loss(r_chosen, r_rejected, reduction="none")))
    """),
    ("md", """
    ## Only differences are learned

    The loss depends on r_c − r_r alone. Add the same constant to every score and nothing changes;
    multiply the scores and the loss does change, because the gaps get wider.
    """),
    ("code", """
    shifted = pairwise_loss(r_chosen + 10.0, r_rejected + 10.0)
    torch.testing.assert_close(shifted, pairwise_loss(r_chosen, r_rejected))
    print("shifted by +10:", shifted)
    print("scaled by 2:   ", pairwise_loss(2 * r_chosen, 2 * r_rejected))
    """),
    ("md", """
    So the reward has no natural zero. A trained model may give every response +40 or −3: only the
    comparisons mean something. We come back to this below.

    ## Shape and gradient

    Plotted against the gap Δ = r_c − r_r: the loss is large and almost linear when the model has the
    pair the wrong way round (Δ < 0), log 2 ≈ 0.69 at a tie, and fades towards 0 once the chosen
    response clearly wins. The dashed line is its slope.
    """),
    ("code", """
    plot_pairwise_loss(margin=0.0, gap=1.6)
    """),
    ("md", """
    Autograd gives the gradient with respect to each score. It is equal and opposite: every step pushes
    the chosen score up and the rejected one down by the same amount, σ(−Δ). Pairs the model already
    gets right by a wide gap contribute almost nothing; pairs it gets wrong contribute almost 1.
    """),
    ("code", """
    gaps = torch.tensor([-4.0, -1.0, 0.0, 1.0, 4.0, 8.0])
    r_c = gaps.clone().requires_grad_()
    r_r = torch.zeros_like(gaps, requires_grad=True)
    pairwise_loss(r_c, r_r, reduction="sum").backward()
    for gap, g_c, g_r in zip(gaps.tolist(), r_c.grad.tolist(), r_r.grad.tolist()):
        print(f"Δ = {gap:+.0f}:  ∂loss/∂r_c = {g_c:+.4f}   ∂loss/∂r_r = {g_r:+.4f}")
    """),
    ("md", """
    ## A margin

    With a margin m the loss becomes −log σ(r_c − r_r − m): the chosen response must win by at least m
    before the loss gets small. Some data sets give a larger margin to pairs people judged "much
    better" (Llama 2 did this). The curve simply slides right by m.
    """),
    ("code", """
    for m in [0.0, 1.0, 2.0]:
        print(f"m = {m}: loss at Δ = 1 is {pairwise_loss(torch.tensor([1.0]), torch.tensor([0.0]), m).item():.4f}")
    plot_pairwise_loss(margin=1.0, gap=1.0)
    """),
    ("md", """
    ## Centering: choosing the level of the scores

    Because only differences matter, the gradient never moves the *average* of the scores: the push up
    on r_c and the push down on r_r cancel. Whatever level the scores start at, they keep. To see it,
    we fit four free numbers (one score each for answers A, B, C, D, starting near 5) to the
    preferences A > B, A > C, B > D, C > D, once with the pairwise loss alone and once with
    `centering_penalty`, mean((r_c + r_r)²), added with a small weight.
    """),
    ("code", """
    better = torch.tensor([0, 0, 1, 2])  # A, A, B, C
    worse = torch.tensor([1, 2, 3, 3])  # B, C, D, D


    def fit_scores(center_coef: float, steps: int = 300, seed: int = 0) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        scores = (5.0 + torch.randn(4, generator=generator)).requires_grad_()  # (4,) start far from 0
        print(f"start: mean = {scores.mean():.2f}", end="  →  ")
        optimizer = torch.optim.SGD([scores], lr=0.5)
        for _ in range(steps):
            r_c, r_r = scores[better], scores[worse]
            loss = pairwise_loss(r_c, r_r) + center_coef * centering_penalty(r_c, r_r)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return scores.detach()


    for coef in [0.0, 0.05]:
        s = fit_scores(coef)  # prints the starting mean
        print(f"center_coef = {coef}: scores A..D = {[round(v, 2) for v in s.tolist()]}, mean = {s.mean():.2f}")
    """),
    ("md", """
    Both runs rank A above B and C, and those above D. Without the penalty the mean stays exactly where it
    started; with it the scores settle around 0. In `train_reward_model` the same term is the
    `center_coef` option.

    ## Explore

    Move the sliders: watch how quickly the loss and the gradients fade once r_chosen pulls ahead, what
    the margin does, and how **shift both** leaves the loss and gradients alone while the centering
    penalty grows.
    """),
    ("code", """
    from rmlearn.widgets import loss_explorer

    loss_explorer()
    """),
    ("md", """
    ## Check yourself
    """),
    quiz_cell([
        ("Pair 1 has scores (chosen 4.0, rejected 3.0); pair 2 has (chosen −1.0, rejected −2.0). Which pair has the larger pairwise loss?",
         ["pair 1", "pair 2", "they are equal", "the loss is undefined for negative scores"],
         2,
         ["Higher scores do not matter, only the gap.",
          "Negative scores are not penalised; only the gap counts.",
          "Both gaps are 1.0, so both cost −log σ(1) ≈ 0.313.",
          "−log σ(Δ) is defined for any real scores."]),
        ("The model already scores a chosen response 8 points above the rejected one. How much does this pair move the scores in the next gradient step?",
         ["almost nothing", "more than any other pair", "exactly one unit each", "it pushes the chosen score down"],
         0,
         ["The gradient is σ(−8) ≈ 0.0003: confidently correct pairs hardly teach anything.",
          "The largest gradients come from pairs ranked the wrong way.",
          "The gradient size is σ(−Δ), not a fixed amount.",
          "The gradient always pushes the chosen score up and the rejected one down."]),
        ("With margin m = 1, what is the loss for a pair whose gap r_c − r_r is exactly 1?",
         ["0", "log 2 ≈ 0.693", "1", "infinite"],
         1,
         ["The loss is never exactly 0.",
          "−log σ(1 − 1) = −log σ(0) = log 2, the same as a tie without a margin.",
          "−log σ(0) is log 2, not 1.",
          "The loss is finite for every gap."]),
        ("Why would you add a centering penalty to the pairwise loss?",
         ["The pairwise loss leaves the overall level of the scores free; the penalty keeps them near zero.",
          "It makes the model rank more pairs correctly.",
          "It keeps every gap below 1.",
          "It replaces the pairwise loss for large data sets."],
         0,
         ["Adding a constant to all scores leaves the pairwise loss unchanged, so something else must fix the level.",
          "Ranking is decided by the pairwise loss; centering only chooses among equally good solutions.",
          "It penalises (r_c + r_r)², the level of the pair, not the gap.",
          "It is a small extra term added to the pairwise loss, not a replacement."]),
    ]),
    ("md", """
    ## Next

    Lesson 04 trains the model with this loss and turns rankings of several answers into pairs. The
    graded exercise for lessons 03–04 is **`ps2_preference_training`** (in
    `exercises/source/ps2_preference_training/`).
    """),
    ]


def lesson_04() -> list:
    return [
    ("md", """
    # 04 · Training the reward model; rankings become pairs

    Time to train. We fit the tiny reward model on preference pairs, check it on pairs it never saw,
    then look at data that ranks several answers at once, and finally use the trained model the way RLHF
    does: to score responses one at a time.

    **What you will learn**

    - how `train_reward_model` fits the model, and how to read its loss and accuracy curves;
    - how to judge a reward model on held-out pairs (`evaluate`);
    - how a ranking of K answers becomes K·(K−1)/2 pairs, and how that compares with the Plackett–Luce loss;
    - the dual role of the reward model: trained to compare, used to score each response on its own (best-of-n).
    """),
    ("code", """
    import torch

    from rmlearn import RewardModel, course_tokenizer, evaluate, tiny_backbone, train_reward_model
    from rmlearn.plots import plot_history
    from rmlearn.zoo import course_data

    tokenizer = course_tokenizer()
    train, test = course_data()  # synthetic pairs split 80/20, plus the support pairs in train
    print(len(train), "training pairs,", len(test), "held-out pairs")
    print(train[0])
    """),
    ("md", """
    Most pairs are synthetic, built from a hidden rule: an answer's quality is the number of helpful
    phrases ("click forgot password", …) minus the number of unhelpful ones ("read the manual", …).
    Filler phrases ("kind regards", …) only add length. Simulated annotators always prefer the
    higher-quality answer here (lesson 05 makes them biased).

    ## Before training

    An untrained model ranks held-out pairs at chance level:
    """),
    ("code", """
    model = RewardModel(tiny_backbone(seed=0), seed=0)
    before = evaluate(model, tokenizer, test)
    print({k: round(v, 3) for k, v in before.items()})
    """),
    ("md", """
    ## Training

    `train_reward_model` runs AdamW on the pairwise loss from lesson 03. Each step scores a batch of
    chosen and rejected responses in one forward pass, then pushes each chosen score up and each
    rejected score down.
    """),
    ("code", """
    history = train_reward_model(model, tokenizer, train, epochs=4, batch_size=16, lr=3e-3, seed=0)
    print(f"{len(history)} steps in {history.seconds:.1f} s")
    """),
    ("code", """
    plot_history(history)
    """),
    ("md", """
    The loss starts at log 2 ≈ 0.69 (every pair a tie) and falls; the fraction of pairs in each batch
    ranked the right way rises. Training curves can flatter, so the real test is data the model never
    saw:
    """),
    ("code", """
    after = evaluate(model, tokenizer, test)
    for key in ["accuracy", "mean_gap", "mean_chosen", "mean_rejected"]:
        print(f"{key:14s} before {before[key]:+8.3f}   after {after[key]:+8.3f}")
    """),
    ("md", """
    Held-out accuracy is the fraction of test pairs where r(chosen) > r(rejected); the mean margin is
    the average gap. Note that `mean_chosen` and `mean_rejected` sit wherever training left them: only
    their difference is meaningful (lesson 03).

    ## Rankings become pairs

    Annotators are often shown K answers and asked to order them. A ranking best → worst contains a
    preference for every pair of answers: K·(K−1)/2 of them. InstructGPT collected rankings of 4 to 9
    answers this way: one ranking of 9 gives 36 pairs for the price of reading 9 answers.
    """),
    ("code", """
    from rmlearn import RankedExample, listwise_pairwise_loss, plackett_luce_loss, ranking_to_pairs

    ranked = RankedExample(
        prompt="How do I reset my password?",
        responses=(  # best → worst
            "Open the login page, choose 'Forgot password' and enter your email. The link arrives in a few minutes.",
            "Click 'Forgot password' on the login page.",
            "Try to remember it.",
            "Passwords cannot be reset. Please create a new account.",
        ),
    )
    print(ranking_to_pairs(["A", "B", "C", "D"]))
    print(len(ranked.pairs()), "PreferencePairs from one ranking of", len(ranked.responses))
    print({k: len(ranking_to_pairs(range(k))) for k in range(2, 10)})
    """),
    ("md", """
    ## Two ways to learn from a ranking

    - **Listwise pairwise loss** (InstructGPT): the mean pairwise loss over all K·(K−1)/2 pairs of the ranking.
    - **Plackett–Luce**: the probability of the whole ranking as a sequence of choices: pick the best of all K
      (a softmax over the scores), then the best of the remaining K−1, and so on. The loss is −log of that probability.

    Both take scores of shape (batch, K) ordered best → worst. Here are the trained model's scores for
    the ranking above, and the two losses for a few orderings of the same numbers:
    """),
    ("code", """
    scores = model.score(ranked.prompt, list(ranked.responses), tokenizer)  # (K,) one score per answer
    print("model's scores, best → worst:", [round(s, 2) for s in scores.tolist()])

    cases = {
        "model's scores": scores,
        "same numbers, human order": scores.sort(descending=True).values,
        "same numbers, reversed": scores.sort().values,
        "all equal": torch.zeros(4),
    }
    print(f"{'':28s} listwise   Plackett–Luce")
    for name, s in cases.items():
        row = s.unsqueeze(0)  # (1, K)
        print(f"{name:28s} {listwise_pairwise_loss(row).item():8.3f}   {plackett_luce_loss(row).item():8.3f}")
    """),
    ("md", """
    Both losses are lowest when the numbers follow the people's order and highest when they are
    reversed; where the model's own order disagrees with the people's, it pays for every pair it gets
    the wrong way round. The two differ in scale and weight: the listwise loss averages pairs, so a tie costs log 2 whatever K is; Plackett–Luce adds K − 1
    choices, so a tie costs log K! (here log 24 ≈ 3.18) and mistakes at the top of the ranking (the
    first choice, over all K) weigh the most. For K = 2 the two are the same loss.
    `train_reward_model(..., loss="listwise")` or `loss="plackett_luce"` trains on `RankedExample`s
    with either one.

    Try the explorer: set K, move the scores (answer A is the one people ranked best) and watch the
    pairs table and both losses.
    """),
    ("code", """
    from rmlearn.widgets import ranking_explorer

    ranking_explorer()
    """),
    ("md", """
    ## The dual role: trained to compare, used to score

    Training only ever compared two responses. In use, the reward model gets **one** response at a
    time and returns a number; during RL the policy's every sampled response is scored this way, and
    the continuous value tells the policy not only *whether* it did better but by how much.

    The simplest use is **best-of-n**: sample n answers, score each one independently, keep the
    highest. Here are 8 candidate answers; we also print their hidden quality, which the model never saw.
    """),
    ("code", """
    from rmlearn.data import SYNTHETIC_PROMPTS, quality, synthetic_preferences
    from rmlearn.plots import plot_scores

    prompt = SYNTHETIC_PROMPTS[0]
    candidates = [text for p in synthetic_preferences(4, seed=11) for text in (p.chosen, p.rejected)]
    rewards = model.score(prompt, candidates, tokenizer)  # (n,) each scored on its own
    best = int(rewards.argmax())

    print("prompt:", prompt)
    for i in rewards.argsort(descending=True).tolist():
        print(f"{rewards[i]:+6.2f}  quality {quality(prompt, candidates[i]):+.0f}  {candidates[i]}")
    print("\\nbest of", len(candidates), "→", candidates[best])
    """),
    ("code", """
    colors = ["C2" if quality(prompt, c) > 0 else "C7" if quality(prompt, c) == 0 else "C3" for c in candidates]
    plot_scores(rewards, [f"q={quality(prompt, c):+.0f}  {c}" for c in candidates], highlight=best, colors=colors)
    """),
    ("md", """
    The scores are spread over a range, not split into good/bad, and they follow the hidden quality.
    Any two can still be compared as a preference probability, σ(r_a − r_b):
    """),
    ("code", """
    top2 = rewards.argsort(descending=True)[:2]
    print(f"P(best beats runner-up) = {torch.sigmoid(rewards[top2[0]] - rewards[top2[1]]).item():.3f}")
    """),
    ("md", """
    ## Check yourself
    """),
    quiz_cell([
        ("An annotator ranks 5 answers to one prompt. How many preference pairs does that ranking contain?",
         ["5", "10", "20", "25"],
         1,
         ["That counts answers, not pairs.",
          "5·4/2 = 10: every unordered pair of answers, each ordered by the ranking.",
          "That counts each pair twice (A over B and B over A are one comparison).",
          "That includes each answer paired with itself and both orders."]),
        ("How do the listwise pairwise loss and the Plackett–Luce loss compare when K = 2?",
         ["They are the same loss.",
          "Plackett–Luce is always twice as large.",
          "Only Plackett–Luce uses the scores' difference.",
          "The listwise loss is undefined for K = 2."],
         0,
         ["With two answers, choosing the better of the two is one softmax over two scores, which is σ(r_1 − r_2).",
          "For K = 2 they agree exactly; they differ only for K > 2.",
          "Both depend only on differences of scores.",
          "With K = 2 there is one pair, and it is the plain pairwise loss."]),
        ("Best-of-n with n = 8: how is the reward model used to pick the answer?",
         ["It runs all 28 pairwise comparisons and counts wins.",
          "It needs people to rank the 8 answers first.",
          "It scores each of the 8 answers on its own and the highest score wins.",
          "It averages the 8 answers' hidden states and scores the average."],
         2,
         ["Pairs are how it was trained, but each score already orders all candidates: 8 scores suffice.",
          "Best-of-n replaces people at selection time; that is the point of training a reward model.",
          "Eight forward passes (or one batch of 8), one score each; no pairs are needed once it is trained.",
          "Averaging would blend the answers; each candidate is scored separately."]),
        ("Held-out accuracy of a reward model is 0.5. What does that suggest?",
         ["It is half-way trained.",
          "Its rewards are centred on 0.5.",
          "It is perfect on half of the prompts and wrong on the other half.",
          "It ranks unseen pairs no better than a coin flip."],
         3,
         ["Accuracy does not measure training progress on a linear scale.",
          "Accuracy says nothing about the level of the scores.",
          "It is a fraction of pairs, not of prompts.",
          "Accuracy is the fraction of held-out pairs with r(chosen) > r(rejected); 0.5 is chance."]),
    ]),
    ("md", """
    ## Next

    Lesson 05 shows how biased annotators teach a reward model to love long answers. The graded
    exercise for lessons 03–04 is **`ps2_preference_training`** (in
    `exercises/source/ps2_preference_training/`).
    """),
    ]


NOTEBOOKS = {
    "01_text_to_one_number.ipynb": lesson_01,
    "02_which_hidden_state.ipynb": lesson_02,
    "03_learning_from_comparisons.ipynb": lesson_03,
    "04_training_and_rankings.ipynb": lesson_04,
}


def main() -> None:
    for name, cells in NOTEBOOKS.items():
        build(LESSONS / name, cells())
        print("wrote", LESSONS / name)


if __name__ == "__main__":
    main()
