"""Write modern everyday English with Gemma 3 270M itself, and cache its resid_post activations as it goes.

No source that can be had offline here holds modern conversational text (e-mail, news, sport, recipes,
tech support, reviews...), and the demo SAE loses most on it (issue 11). The base model writes such text
when it is started on a modern opening: this script samples 128-token windows (BOS, one of `OPENINGS`,
then sampled tokens) and stores, for every token after BOS, the residual stream after `--layer` exactly
as `scripts/cache_activations.py` lays it out (`acts.npy` fp16 `[n_windows * 127, d_model]`,
`tokens.npy`, `meta.json`, `progress.json`), so `scripts/train_demo_sae.py --mix DIR` can read it.

Speed on 2 CPU cores: the unembedding (262k tokens x 640) is most of a step, so sampling is restricted to
the `--vocab` token ids most frequent in the training mix (a fixed list computed once), with the steering
loop's cached forward: ~300 tok/s at batch 64, against ~49 tok/s for `model.generate` at batch 128. The
text stays fluent (rare ids are never sampled; they can still be read).
Resumable: stop it at any time and run it again with the same arguments.

    python scripts/generate_modern_text.py --tokens 300000 --out ~/.cache/scopewidgets/modern_acts
    python scripts/generate_modern_text.py --openings topics --seed 1 --tokens 300000 --out ~/.cache/scopewidgets/topic_acts
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from activation_cache import ActivationCache

from scopewidgets.core.corpus import iter_token_windows, training_mix
from scopewidgets.core.hooks import capture
from scopewidgets.demo import demo_model
from scopewidgets.steering.generate import _Decoder

# Openings written for this script: everyday registers of the 2010s-2020s. The model goes on from each.
OPENINGS = r"""
Hi Sarah,\n\nThanks for your email about
Hey team, quick update on
Dear customer, your order
Hi all, just a reminder that
Thanks for getting back to me so quickly.
Subject: Meeting notes\n\n
Can you send me the
Sorry for the late reply,
I hope you had a great weekend!
Just wanted to let you know that
Breaking news:
The government announced on Monday that
Police are appealing for witnesses after
Shares in the company fell sharply after
The city council has approved plans to
Scientists say a new study shows that
Tickets for the festival go on sale
The prime minister said in a statement that
Residents were evacuated on Tuesday after
The new smartphone comes with
Manchester United
The Lakers beat the Celtics
In the second half, the striker
The coach told reporters after the game that
She won the gold medal in
The match was postponed because of
Fans queued for hours outside the stadium
Preheat the oven to 180C.
Ingredients:\n- 2 cups flour\n
This easy chicken curry
My favourite weeknight dinner is
Stir the sauce until it thickens, then
Step 1: Open the Settings app and
If your laptop will not turn on,
To reset your password, click
I just upgraded to the new version and
Has anyone else had problems with
The app keeps crashing when I
Our wifi has been really slow since
Review: I bought this vacuum cleaner
5 stars. The hotel staff were
I ordered a pair of trainers online and
Honestly the best coffee in town.
The battery life on this phone is
We stayed for three nights and
Top 10 things to do in
If you are planning a trip to
Our flight was delayed by four hours, so
Here are my tips for packing light:
Day 3 of our road trip:
So I finally started going to the gym
My doctor told me to
Drinking more water can help
How to sleep better:
I have been working from home for
My landlord says the rent will
The interview went well, I think.
After graduating from university, she
Our company is hiring a
Looking for advice:
My kids have started
We adopted a puppy last month and
The school sent a letter home saying
Happy birthday! I hope
Congratulations on your new job!
Can anyone recommend a good
What is the best way to
I cannot believe it is already December.
The weather forecast says
Traffic on the motorway was terrible this morning because
The train was cancelled again, so
I paid the electricity bill online and
Climate change is
Electric cars are becoming
The price of groceries has gone up
Streaming services like
On social media, people are
The new season of the show
The film, which stars
The album was released last Friday and
The concert last night was
I have just finished reading
Our book club met on Thursday to discuss
Welcome to our website!
About us\n\nWe are a small family business
Frequently asked questions\n\nQ:
Terms and conditions:
Privacy policy: We collect
Click here to subscribe to
Sign up for our newsletter to get
Free delivery on all orders over
Opening hours: Monday to Friday
Posted by admin on March 3, 2019\n\n
Update: the issue has been fixed in
Thanks for watching! Don't forget to
In today's video I am going to show you
Lol, that is so true.
OMG I can't wait for
Good morning everyone!
The hospital said the patient was
The vaccine rollout
Volunteers gathered on Saturday to
Local businesses say
The startup raised $10 million to
Our quarterly results show
The meeting has been moved to
Please find attached the
I'm writing to complain about
Dear Hiring Manager,
To whom it may concern,
""".strip().splitlines()
OPENINGS = [line.replace("\\n", "\n") for line in OPENINGS]  # newlines inside an opening are written \\n

# A second set (`--openings topics`): everyday subjects the first set touches little (the body and health,
# the kitchen, trades and jobs, materials and making things, home and garden, nature, school subjects).
TOPIC_OPENINGS = r"""
I twisted my ankle playing football and now
The physiotherapist showed me an exercise for
After the operation the surgeon said
My grandmother has arthritis in
Symptoms include pain in the
A rash appeared on my
The dentist said one of my teeth
Stretch slowly and hold the position while
Wash your hands before touching your
The nurse checked my blood pressure and
Ingredients:\n
For the filling you will need
Our family recipe for Sunday lunch:
The menu at the new restaurant includes
Shopping list for the week:\n-
At the market this morning I bought
Breakfast in our house usually means
Preheat the oven, grease a tin and
The bakery on the corner sells
What to pack for a school lunch:
Job title:
We are looking for an experienced
My dad worked all his life as a
She trained for seven years to become a
A day in the life of a
Which jobs will still exist in twenty years? Think of
The workers on the building site
The court heard that the
The crew of the fishing boat
Careers advice: if you like helping people, consider
The necklace is made from
This antique clock has a case of
The bridge was built from
Blacksmiths heat the metal until
The roof was covered with sheets of
Jewellery care: to clean your rings,
The mine produced
Our kitchen sink is made of
Prices on the commodities market today:
The sculpture, cast in
In the garden this spring we planted
The living room is painted
Our new sofa is
The walls of the old farmhouse
At the zoo the children saw
On our walk through the woods we spotted
The farmer keeps
Wildlife guide: animals you may see
In history class we learned that
The capital of
Geography quiz: name the
Our chemistry teacher explained that
The calendar for next year:
My cousin's wedding is on
The whole family came for dinner:
My little brother and I
""".strip().splitlines()
TOPIC_OPENINGS = [line.replace("\\n", "\n") for line in TOPIC_OPENINGS]
OPENING_SETS = {"modern": OPENINGS, "topics": TOPIC_OPENINGS}


def frequent_ids(tokenizer, n: int, texts: int = 4000) -> torch.Tensor:
    """The `n` token ids used most often over the first `texts` texts of the training mix (fixed)."""
    counts = torch.zeros(len(tokenizer), dtype=torch.long)
    for i, row in enumerate(iter_token_windows(tokenizer, training_mix(), 128)):
        counts += torch.bincount(row, minlength=counts.numel())
        if i >= texts:
            break
    return counts.topk(n).indices.sort().values


@torch.inference_mode()
def sample_windows(
    model: torch.nn.Module,
    ids: torch.Tensor,
    seq_len: int,
    layer: int,
    unembed: torch.Tensor,
    vocab: torch.Tensor,
    temperature: float,
    top_k: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Continue the openings `ids [B, P]` to `seq_len` tokens, sampling each next id among `vocab` (logits
    `hidden @ unembed.T`, `unembed` the rows of the unembedding for `vocab`) with `temperature` and `top_k`.
    Gemma 2's final soft-capping is applied as the model does. Returns the ids `[B, seq_len]` and the resid_post of `layer` at every position `[B, seq_len, d_model]`,
    read during the cached forward steps (equal to one forward over the finished ids up to rounding).
    """
    decoder = _Decoder(model)  # the steering loop's cached forward, logits over `vocab` only
    decoder.unembedding = unembed
    states, cache, step_input = [], None, ids
    site = ("resid_post", layer)
    while True:
        with capture(model, [site], stop=False) as got:
            logits, cache = decoder(step_input, cache)
        states.append(got[site])
        if ids.shape[1] >= seq_len:
            return ids, torch.cat(states, dim=1)
        top = (logits / temperature).topk(min(top_k, logits.shape[1]), dim=1)
        choice = torch.multinomial(top.values.softmax(dim=1), 1, generator=generator)
        step_input = vocab[top.indices.gather(1, choice)]
        ids = torch.cat([ids, step_input], dim=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=300_000, help="non-BOS tokens to write")
    parser.add_argument("--layer", type=int, default=6)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--vocab", type=int, default=32_768, help="most frequent ids that may be sampled")
    parser.add_argument("--temperature", type=float, default=0.9)
    parser.add_argument("--top-k", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--openings",
        choices=tuple(OPENING_SETS),
        default="modern",
        help="which set of openings to start from",
    )
    parser.add_argument("--out", type=Path, default=Path("~/.cache/scopewidgets/modern_acts").expanduser())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, tokenizer = demo_model()
    n_windows = -(-args.tokens // (args.seq_len - 1))
    cache = ActivationCache(args.out, n_windows, args.seq_len, model.config.hidden_size)
    vocab_file = args.out / "vocab.pt"
    if not vocab_file.is_file():
        torch.save(frequent_ids(tokenizer, args.vocab), vocab_file)
    vocab = torch.load(vocab_file)
    unembed = model.get_output_embeddings().weight.detach().index_select(0, vocab)  # [vocab, d_model]
    bos = tokenizer.bos_token_id
    openings: dict[int, list[list[int]]] = {}
    chosen = OPENING_SETS[args.openings]
    for text in chosen:
        ids = [bos, *tokenizer(text, add_special_tokens=False)["input_ids"]]
        openings.setdefault(len(ids), []).append(ids)
    lengths = sorted(openings)
    weights = torch.tensor([len(openings[n]) for n in lengths], dtype=torch.float)
    body = cache.body
    bar = tqdm(
        total=n_windows * body, initial=cache.done * body, unit="tok", desc="modern text", mininterval=10
    )
    while cache.done < n_windows:
        done = cache.done
        gen = torch.Generator().manual_seed(args.seed * 1_000_003 + done)  # a resumed batch is the same batch
        # one opening length per batch (no padding), drawn so that every opening is as likely as another
        length = lengths[int(torch.multinomial(weights, 1, generator=gen))]
        group = openings[length]
        rows = min(args.batch, n_windows - done)
        pick = torch.randint(len(group), (rows,), generator=gen)
        ids = torch.tensor([group[i] for i in pick.tolist()])
        ids, resid = sample_windows(model, ids, args.seq_len, args.layer, unembed, vocab, args.temperature, args.top_k, gen)  # fmt: skip
        cache.append(ids, resid[:, 1:])  # every token but BOS
        cache.save_progress()
        bar.update(rows * body)
    bar.close()
    corpus = (
        f"text sampled from Gemma 3 270M after {len(chosen)} {args.openings} openings (scripts/"
        f"generate_modern_text.py: temperature {args.temperature}, top-k {args.top_k}, "
        f"{args.vocab} most frequent ids, seed {args.seed})"
    )
    print(json.dumps(cache.finish(args.layer, corpus)))


if __name__ == "__main__":
    main()
