"""Which ranking score surfaces concept features? Compared on held-out concept sentences, real demo.

For 12 word classes (cities, countries, months, colours, family words, numbers, weekdays, animals, body
parts, food, professions, metals) this script:

1. finds each class's *concept features* on probe sentences (templates filled with 8 words of the class),
   two ways (`concept_features(scope, by=...)`): features firing on the class word in at least half of the
   class's probes, and at least 4 times as often ("firing") or with at least 4 times the mean activation
   ("activation") as on the other classes' words on average (so a "place name" feature counts for cities
   and for countries, a "time" feature for months and weekdays, but a feature firing on most nouns counts
   for none; a feature firing weakly on many nouns and strongly on cities counts for cities only by
   activation);
2. on held-out test sentences (written here, not from the corpus; other words of the class), ranks the
   features firing at the class word (`scope.search(text, token=word)`) with each score variant and counts
   the classes whose top 3 holds a concept feature of that class, and whose first row is one.

Reserved features are left out for every variant except "raw + reserved" (what the package showed before).
Prints one table; the primary figure is the first test sentence of each class (12), then all 36.

    python benchmarks/concept_ranking.py            # hit counts per score, then the ranking's cost
    python benchmarks/concept_ranking.py --timing   # the ranking's cost only
    python benchmarks/concept_ranking.py --extended # every score on 143 held-out sentences (TESTS, VALIDATION,
                                                    # EXTRA) under seven definitions: the two above, the
                                                    # concept probe's features with F1 >= 0.3, 0.4, 0.5,
                                                    # "evidence": >= 5 of a feature's 20 top examples are
                                                    # words of the class (LEXICON), what its dashboard shows,
                                                    # and "label": its label's fired half names a word of
                                                    # the class, what every list shows beside it
    python benchmarks/concept_ranking.py --sae PATH # another SAE folder on the demo model (its statistics:
                                                    # shipped ones if it has them, else a short pass)
"""

from __future__ import annotations

import datetime
import platform
import sys
import time

import torch

import scopewidgets as sw
from scopewidgets.features import ranking

CLASSES = {
    "cities": "Paris London Rome Tokyo Berlin Madrid Vienna Moscow Chicago Dublin Athens Boston",
    "countries": "France Germany Italy Spain Japan China Russia Canada Mexico Egypt Poland Greece",
    "months": "January February March April June July August September October November December",
    "colours": "red blue green yellow purple black white brown pink grey orange",
    "family": "mother father brother sister uncle aunt cousin son daughter wife husband",
    "numbers": "two three four five six seven eight nine ten twelve twenty",
    "weekdays": "Monday Tuesday Wednesday Thursday Friday Saturday Sunday",
    "animals": "dog cat horse cow sheep lion tiger wolf bear rabbit fox",
    "body": "hand arm leg foot head eye nose mouth ear finger knee",
    "food": "bread cheese apple butter rice soup meat milk potato egg cake",
    "professions": "doctor lawyer teacher farmer soldier priest nurse engineer sailor baker judge",
    "metals": "gold silver iron copper steel lead tin bronze brass zinc",
}
PROBE_TEMPLATES = {
    "cities": [
        "Last summer we travelled to {} by train.",
        "She was born in {} and never left it.",
        "The mayor of {} spoke to the crowd.",
        "Many tourists visit {} every year.",
    ],
    "countries": [
        "The king of {} signed the treaty.",
        "Trade with {} grew after the war.",
        "He served as ambassador to {} for ten years.",
        "The people of {} voted again.",
    ],
    "months": [
        "The meeting was held in {} last year.",
        "Her birthday falls in {}.",
        "Snow came early that {}.",
        "The ship sailed on the third of {}.",
    ],
    "colours": [
        "She wore a {} dress to the dance.",
        "The walls were painted {}.",
        "He picked the {} one from the box.",
        "The sky turned {} at dusk.",
    ],
    "family": [
        "My {} lives in a small town.",
        "Her {} came to visit on Sunday.",
        "He wrote a long letter to his {}.",
        "The {} laughed at the old story.",
    ],
    "numbers": [
        "There were {} men in the boat.",
        "She waited {} hours at the station.",
        "We bought {} loaves of bread.",
        "The house had {} windows facing the sea.",
    ],
    "weekdays": [
        "The shop is closed on {}.",
        "We will meet again next {}.",
        "Every {} he walks to the market.",
        "The letter arrived on {} morning.",
    ],
    "animals": [
        "The {} ran across the field.",
        "A small {} slept by the fire.",
        "The farmer sold his {} at the fair.",
        "We saw a {} near the river.",
    ],
    "body": [
        "He hurt his {} when he fell.",
        "She raised her {} slowly.",
        "The doctor looked at his {}.",
        "A cold wind stung my {}.",
    ],
    "food": [
        "We had {} for breakfast.",
        "She bought some {} at the market.",
        "The {} was still warm on the table.",
        "He did not like the {} at all.",
    ],
    "professions": [
        "The {} arrived early in the morning.",
        "Her brother became a {} last year.",
        "The old {} told us what to do.",
        "Every village needs a good {}.",
    ],
    "metals": [
        "The ring was made of {}.",
        "They mined {} in the hills.",
        "The price of {} rose again.",
        "A heavy {} box stood by the door.",
    ],
}
TESTS = {
    "cities": [
        "After the long war the army finally marched into Athens.",
        "The train from Dublin was late again this morning.",
        "Her brother studied medicine in Boston for five years.",
    ],
    "countries": [
        "The trade agreement between the two empires gave Poland new ports.",
        "Olive groves cover the hills of Greece.",
        "The president of Egypt visited the capital.",
    ],
    "months": [
        "The harvest festival always begins in October.",
        "By November the roads were covered in mud.",
        "We planned the wedding for December.",
    ],
    "colours": [
        "Her hat had a bright pink ribbon.",
        "The old coat had faded to grey.",
        "He peeled an orange and shared it.",
    ],
    "family": [
        "The farmer's wife sold butter at the market.",
        "His daughter taught at the village school.",
        "She met her husband at a concert.",
    ],
    "numbers": [
        "The committee has ten members.",
        "The journey took twelve days by coach.",
        "About twenty soldiers guarded the bridge.",
    ],
    "weekdays": [
        "The market opens every Friday at dawn.",
        "We went fishing on Saturday.",
        "Church bells ring on Sunday.",
    ],
    "animals": [
        "A rabbit hid under the hedge in the garden.",
        "The brown bear caught a fish.",
        "A fox crept into the henhouse.",
    ],
    "body": [
        "The boxer broke his finger in the fight.",
        "She scraped her knee on the stones.",
        "He had a ringing in his ear.",
    ],
    "food": [
        "For dessert she baked a cake.",
        "He cracked an egg into the pan.",
        "The soup needed more salt and a potato.",
    ],
    "professions": [
        "The baker opened his shop before sunrise.",
        "An old sailor told stories at the inn.",
        "The judge read the sentence aloud.",
    ],
    "metals": [
        "The bell was cast in bronze.",
        "The door handle was polished brass.",
        "Roofs in the town were made of zinc.",
    ],
}

# More held-out sentences (written here, not from the corpus): `VALIDATION` uses the held-out words like
# `TESTS`; `EXTRA` is (class, sentence, word) with held-out and new words of each class. Only the
# extended table (`--extended`) reads them.
VALIDATION = {
    "cities": [
        "We spent a rainy weekend in Dublin last spring.",
        "The museum in Athens was closed for repairs.",
        "My cousin moved to Boston to find work.",
    ],
    "countries": [
        "The ambassador returned from Egypt with good news.",
        "Farmers in Poland grew wheat and rye.",
        "They sailed along the coast of Greece for a month.",
    ],
    "months": [
        "The school year ends in December.",
        "Heavy rain fell all through October.",
        "Prices usually rise in November.",
    ],
    "colours": [
        "The fox had an orange tail.",
        "She painted the door pink.",
        "A grey cloud hid the sun.",
    ],
    "family": [
        "Her husband worked at the mill.",
        "The old man's daughter carried the basket.",
        "His wife opened the door.",
    ],
    "numbers": [
        "The book had twelve chapters.",
        "He walked twenty miles in a day.",
        "They hired ten new workers.",
    ],
    "weekdays": [
        "The post comes every Saturday.",
        "On Sunday the streets were quiet.",
        "I will call you on Friday.",
    ],
    "animals": [
        "The fox ran into the woods.",
        "A bear was seen near the camp.",
        "The rabbit nibbled the lettuce.",
    ],
    "body": [
        "She cut her finger on the knife.",
        "He bent his knee and bowed.",
        "The music hurt my ear.",
    ],
    "food": [
        "She ate an egg for breakfast.",
        "He bought a cake for the party.",
        "We cooked a potato in the ashes.",
    ],
    "professions": [
        "The judge listened to both sides.",
        "The baker sold fresh loaves.",
        "A sailor climbed the mast.",
    ],
    "metals": [
        "The statue was made of bronze.",
        "An old brass lamp hung from the ceiling.",
        "The roof was covered with zinc.",
    ],
}
EXTRA = [
    ("cities", "The conference in Lisbon drew scholars from every continent.", "Lisbon"),
    ("cities", "He caught the night bus to Prague.", "Prague"),
    ("cities", "The bridges of Venice are crowded in summer.", "Venice"),
    ("cities", "She sold paintings on the streets of Athens.", "Athens"),
    ("cities", "Our flight to Boston was cancelled.", "Boston"),
    ("cities", "The old harbour of Dublin is full of ships.", "Dublin"),
    ("countries", "The rivers of Brazil flood every spring.", "Brazil"),
    ("countries", "Wine from Portugal was shipped to England.", "Portugal"),
    ("countries", "The border between Sweden and Norway is long.", "Sweden"),
    ("countries", "Tourists flock to Greece for the islands.", "Greece"),
    ("countries", "The general fled to Egypt after the defeat.", "Egypt"),
    ("countries", "Coal from Poland heated the houses.", "Poland"),
    ("months", "The lake freezes solid by December.", "December"),
    ("months", "Leaves turn red in October.", "October"),
    ("months", "The election took place in November.", "November"),
    ("months", "School starts again in September.", "September"),
    ("months", "Tulips bloom in April.", "April"),
    ("months", "The heat was worst in August.", "August"),
    ("colours", "He drove a pink car.", "pink"),
    ("colours", "The sea looked grey under the clouds.", "grey"),
    ("colours", "The team wore orange shirts.", "orange"),
    ("colours", "Her eyes were green like the sea.", "green"),
    ("colours", "A yellow flag flew over the fort.", "yellow"),
    ("colours", "The cat had purple ribbons on its collar.", "purple"),
    ("family", "My husband cooks dinner on weekends.", "husband"),
    ("family", "The king's daughter married a prince.", "daughter"),
    ("family", "His wife ran the farm alone.", "wife"),
    ("family", "My uncle fixed the old clock.", "uncle"),
    ("family", "Her grandmother knitted a scarf.", "grandmother"),
    ("family", "The twins visited their aunt in the city.", "aunt"),
    ("numbers", "The ship carried twelve passengers.", "twelve"),
    ("numbers", "She counted twenty birds on the wire.", "twenty"),
    ("numbers", "The team scored ten goals.", "ten"),
    ("numbers", "He owned seven horses.", "seven"),
    ("numbers", "The castle had four towers.", "four"),
    ("numbers", "They stayed for nine nights.", "nine"),
    ("weekdays", "The library is closed on Sunday.", "Sunday"),
    ("weekdays", "The exam is on Friday afternoon.", "Friday"),
    ("weekdays", "He flew home on Tuesday.", "Tuesday"),
    ("weekdays", "The results arrive on Thursday.", "Thursday"),
    ("weekdays", "Every Monday she swims before work.", "Monday"),
    ("animals", "A fox barked in the night.", "fox"),
    ("animals", "The bear climbed the tree.", "bear"),
    ("animals", "The children fed the rabbit carrots.", "rabbit"),
    ("animals", "An old horse pulled the cart.", "horse"),
    ("animals", "The tiger slept in the shade.", "tiger"),
    ("animals", "The wolf howled at the moon.", "wolf"),
    ("body", "He broke his finger playing football.", "finger"),
    ("body", "Her knee was swollen after the run.", "knee"),
    ("body", "The doctor examined her ear.", "ear"),
    ("body", "She held the cup in her hand.", "hand"),
    ("body", "He rubbed his eye and yawned.", "eye"),
    ("body", "The stone struck his head.", "head"),
    ("food", "We baked a cake for her birthday.", "cake"),
    ("food", "He fried an egg and some bacon.", "egg"),
    ("food", "She peeled a potato for the stew.", "potato"),
    ("food", "Fresh bread was sold at dawn.", "bread"),
    ("food", "The soup was too salty.", "soup"),
    ("food", "He spread butter on his toast.", "butter"),
    ("professions", "The baker kneaded the dough at dawn.", "baker"),
    ("professions", "The sailor tied a knot in the rope.", "sailor"),
    ("professions", "The judge banged his gavel.", "judge"),
    ("professions", "The nurse checked his pulse.", "nurse"),
    ("professions", "A lawyer drafted the contract.", "lawyer"),
    ("professions", "The soldier stood at the gate.", "soldier"),
    ("metals", "The medal was made of bronze.", "bronze"),
    ("metals", "The trumpet was made of brass.", "brass"),
    ("metals", "They coated the nails with zinc.", "zinc"),
    ("metals", "The pipes were made of copper.", "copper"),
    ("metals", "The blade was forged from steel.", "steel"),
    ("metals", "Her necklace was pure silver.", "silver"),
]


def variants(stats: sw.features.FeatureStats) -> dict[str, object]:
    typical = ranking.typical_activation(stats)
    plain = -torch.log(stats.density.clamp(min=1.0 / stats.n_tokens))  # ln(1/d), no 0.001 floor
    floored = ranking.rarity(stats)  # ln(1/max(d, 0.001))
    top = stats.max.clamp_min(1e-6)
    return {
        "raw activation + reserved (before)": lambda a: a,
        "raw activation": lambda a: a,
        "baseline a * ln(1/d)": lambda a: a * plain,
        "a * ln(1/max(d, 0.001))": lambda a: a * floored,
        "ln(1 + a/typical) * ln(1/d)": lambda a: torch.log1p(a / typical) * plain,
        "ln(1 + a/typical) * ln(1/max(d, 0.001))": lambda a: torch.log1p(a / typical) * floored,
        "(a/typical) * ln(1/max(d, 0.001))": lambda a: (a / typical) * floored,
        "ln(1 + a/max) * ln(1/d)": lambda a: torch.log1p(a / top) * plain,
        "(a/typical)^2 * ln(1/d)": lambda a: (a / typical) ** 2 * plain,
        "(a/typical)^2 * ln(1/max(d, 0.001))": lambda a: (a / typical) ** 2 * floored,
        "(a/typical)^1.5 * ln(1/max(d, 0.001)) (default before)": lambda a: (a / typical) ** 1.5 * floored,
        "default: (a/typical)^3 * ln(1/max(d, 0.001))": lambda a: ranking.specificity(a, stats),
    }


def token_vector(scope: sw.Scope, text: str, word: str) -> torch.Tensor:
    acts = scope.activations(text)
    rows = [i for i, t in enumerate(acts.tokens) if t == " " + word]
    if not rows:
        raise ValueError(f"{word!r} is not a token of {text!r}: {acts.tokens}")
    return acts.values[rows].max(dim=0).values


def probe_vectors(scope: sw.Scope) -> dict[str, torch.Tensor]:
    """Each class's `[8, d_sae]` activations at the class word of its probe sentences (templates filled
    with the class's probe words)."""
    vectors = {}
    for name, words in CLASSES.items():
        probe_words = words.split()[:-3]
        templates = PROBE_TEMPLATES[name]
        probes = [templates[i % len(templates)].format(w) for i, w in enumerate(probe_words)]
        probes += [templates[(i + 1) % len(templates)].format(w) for i, w in enumerate(probe_words)][
            : max(0, 8 - len(probes))
        ]
        pairs = zip(probes, probe_words * 2, strict=False)
        vectors[name] = torch.stack([token_vector(scope, p, w) for p, w in pairs]).clamp_min(0)
    return vectors


def concept_features(
    scope: sw.Scope, by: str = "firing", vectors: dict[str, torch.Tensor] | None = None
) -> dict[str, set[int]]:
    """Each class's concept features on the probe sentences (`vectors`: `probe_vectors(scope)`, computed
    when not given). `by="firing"`: fires on the class word in at least half of the class's probes and at
    least 4 times as often as on the other classes' words on average. `by="activation"`: the same half, and
    a mean activation on the class's words (0 where it does not fire) at least 4 times its mean on the
    other classes' words: a feature that fires weakly on many capitalised nouns but strongly on cities
    counts for cities here, not under "firing"."""
    if by not in ("firing", "activation"):
        raise ValueError(f"by must be 'firing' or 'activation', got {by!r}")
    vectors = probe_vectors(scope) if vectors is None else vectors
    fires = {name: (v > 0).float().mean(dim=0) for name, v in vectors.items()}
    measure = fires if by == "firing" else {name: v.mean(dim=0) for name, v in vectors.items()}
    concepts = {}
    for name, rate in fires.items():
        others = torch.stack([m for n, m in measure.items() if n != name]).mean(dim=0)
        concepts[name] = set(torch.nonzero((rate >= 0.5) & (measure[name] >= 4 * others)).flatten().tolist())
    return concepts


def probe_concepts(
    scope: sw.Scope, levels: tuple[float, ...] = (0.3, 0.4, 0.5)
) -> dict[str, dict[str, set[int]]]:
    """Concept features by the package's concept probe (`concept_probe.py`, all its sentences, no split): for
    each level, each class's features whose best one-feature probe (a threshold from `THRESHOLD_QUANTILES` of
    its positive activations) reaches F1 >= level. Reserved features are left out."""
    import concept_probe as cp

    from scopewidgets.demo.probe_text import CONCEPT_CLASSES

    tokens = cp.probe_tokens(scope)
    values = tokens.features.clone()
    values[:, list(scope.sae().reserved_features)] = 0
    firing = torch.where(values > 0, values, torch.nan)
    best = torch.zeros(len(CONCEPT_CLASSES), values.shape[1])
    for q in cp.THRESHOLD_QUANTILES:
        row = torch.nanquantile(firing, q, dim=0).nan_to_num(0.0) if q > 0 else torch.zeros(values.shape[1])
        best = torch.maximum(best, cp.f1_scores(values > row, tokens.labels)[0])
    names = list(CONCEPT_CLASSES)
    return {
        f"probe F1 >= {level}": {
            n: set(torch.nonzero(best[names.index(n)] >= level).flatten().tolist()) for n in names
        }
        for level in levels
    }


# Broad word lists per class for the "evidence" definition: what a reader of a feature's dashboard would
# accept as the class (plurals, related words, digits for numbers), not only the probe's words.
LEXICON = {
    "cities": "paris london rome tokyo berlin madrid vienna moscow chicago dublin athens boston york philadelphia"
    " baltimore washington amsterdam venice florence naples milan lisbon prague warsaw cairo delhi bombay calcutta"
    " sydney toronto montreal liverpool manchester edinburgh glasgow oxford cambridge jerusalem constantinople"
    " petersburg brussels geneva munich hamburg marseilles lyons bristol richmond charleston orleans francisco"
    " angeles seattle denver detroit atlanta city town capital",
    "countries": "france germany italy spain japan china russia canada mexico egypt poland greece england britain"
    " ireland scotland india brazil portugal austria hungary sweden norway denmark holland netherlands belgium"
    " switzerland turkey persia iran iraq israel cuba chile peru argentina colombia ecuador venezuela korea vietnam"
    " australia africa america nation country kingdom republic empire",
    "months": "january february march april may june july august september october november december month months",
    "colours": "red blue green yellow purple black white brown pink grey gray orange violet scarlet crimson golden"
    " silver colour color colours colors",
    "family": "mother father brother sister uncle aunt cousin son daughter wife husband parent parents child children"
    " grandmother grandfather nephew niece family mom dad mum baby sons daughters brothers sisters",
    "numbers": "one two three four five six seven eight nine ten eleven twelve thirteen fifteen twenty thirty forty"
    " fifty hundred thousand million dozen first second third 1 2 3 4 5 6 7 8 9 0",
    "weekdays": "monday tuesday wednesday thursday friday saturday sunday day days week weekend",
    "animals": "dog cat horse cow sheep lion tiger wolf bear rabbit fox dogs cats horses cows bird birds fish animal"
    " animals pig pigs goat deer mouse rat elephant monkey snake eagle duck chicken hen ox oxen beast beasts"
    " creature creatures puppy kitten",
    "body": "hand arm leg foot head eye nose mouth ear finger knee hands arms legs feet eyes ears fingers knees face"
    " neck shoulder shoulders heart chest back lips teeth tooth tongue hair skin thumb toe toes ankle wrist elbow"
    " stomach belly bone bones blood brain lung body",
    "food": "bread cheese apple butter rice soup meat milk potato egg cake eggs apples potatoes beef pork chicken fish"
    " fruit vegetables sugar salt flour wine beer tea coffee pie cream honey corn wheat bacon ham sauce food meal"
    " dinner breakfast lunch",
    "professions": "doctor lawyer teacher farmer soldier priest nurse engineer sailor baker judge doctors lawyers"
    " teachers farmers soldiers priests nurses engineers sailors officer officers captain merchant merchants clerk"
    " minister physician surgeon professor student workers worker carpenter smith blacksmith servant servants king"
    " queen president general police",
    "metals": "gold silver iron copper steel lead tin bronze brass zinc metal metals aluminium aluminum nickel"
    " platinum mercury ore coins coin",
}


def evidence_concepts(scope: sw.Scope, at_least: int = 5) -> dict[str, dict[str, set[int]]]:
    """Concept features by their dashboards: a class's features are those with at least `at_least` of their
    top examples' focus tokens (20 per feature in the shipped evidence or a pass over the default corpus) in
    the class's `LEXICON`. Independent of the probe sentences; crude (a word list), lenient for numbers
    (digits) and strict where the list is short."""
    from scopewidgets.features.labels import _focus_tokens  # the labels' own reading of the top examples

    dashes = scope.dashboards(None, progress=False)
    width = scope.sae().cfg.d_sae
    focus, _ = _focus_tokens(dashes, torch.tensor([dashes._column(f) for f in range(width)]))
    decoded = {
        int(t): scope.tokenizer.decode([int(t)]).strip().lower() for t in focus.unique().tolist() if t >= 0
    }
    words = [[decoded.get(int(t), "") for t in row] for row in focus.tolist()]
    found = {}
    for name, lexicon in LEXICON.items():
        wanted = set(lexicon.split())
        found[name] = {f for f in range(width) if sum(w in wanted for w in words[f]) >= at_least}
    return {"evidence": found}


def label_concepts(scope: sw.Scope) -> dict[str, dict[str, set[int]]]:
    """Concept features by their labels, what every list shows beside a feature: a class's features are
    those whose label's fired half (`fired · words → ...`, the words it fires on most over its top
    examples) holds a word of the class (`LEXICON` or the class's words in `CLASSES`). Crude like
    "evidence", but it is what a reader sees without opening a dashboard."""
    from scopewidgets.features.labels import ARROW, SEP

    sae = scope.sae()
    fired = [
        {w.strip().lower() for w in sae.label(f).split(ARROW)[0].split(SEP)} for f in range(sae.cfg.d_sae)
    ]
    found = {}
    for name, lexicon in LEXICON.items():
        wanted = set(lexicon.split()) | {w.lower() for w in CLASSES[name].split()}
        found[name] = {f for f, words in enumerate(fired) if words & wanted}
    return {"label": found}


def held_out(scope: sw.Scope) -> list[tuple[str, str, torch.Tensor]]:
    """(class, sentence, activations at the class word) of every held-out sentence: `TESTS`, `VALIDATION`,
    `EXTRA`."""
    rows = [
        (n, s, test_word(n, s)) for tests in (TESTS, VALIDATION) for n, group in tests.items() for s in group
    ]
    rows += EXTRA
    return [(n, s, token_vector(scope, s, w)) for n, s, w in rows]


def extended(scope: sw.Scope, definitions: dict[str, dict[str, set[int]]]) -> str:
    """A markdown table: per score, the held-out sentences whose first row (and top 3) holds a concept
    feature, under every definition, and the first rows summed over the definitions."""
    reserved = list(scope.sae().reserved_features)
    rows = held_out(scope)
    lines = [
        f"{len(rows)} held-out sentences; each cell: first row / top 3",
        "| score | " + " | ".join(definitions) + " | first rows, summed |",
        "|---|" + "---|" * (len(definitions) + 1),
    ]
    for variant, score in variants(scope.feature_stats()).items():
        counts = {d: [0, 0] for d in definitions}
        for name, _, a in rows:
            s = score(a).clone()
            s[a <= 0] = -float("inf")
            if not variant.endswith("(before)") and reserved:
                s[reserved] = -float("inf")
            top3 = [
                f for f in torch.sort(s, descending=True, stable=True).indices[:3].tolist() if s[f] > -1e30
            ]
            for d, concepts in definitions.items():
                counts[d][0] += bool(top3) and top3[0] in concepts[name]
                counts[d][1] += bool(set(top3) & concepts[name])
        cells = " | ".join(f"{c[0]} / {c[1]}" for c in counts.values())
        lines.append(f"| {variant} | {cells} | {sum(c[0] for c in counts.values())} |")
    return "\n".join(lines)


def test_word(name: str, sentence: str) -> str:
    words = set(CLASSES[name].split()[-3:])
    found = [w.strip(".,'") for w in sentence.split() if w.strip(".,'") in words]
    if not found:
        raise ValueError(f"No held-out {name} word in {sentence!r}")
    return found[0]


def main() -> None:
    if "--timing" in sys.argv:  # only the cost of ranking
        print(measure_cost(sw.demo()))
        return
    scope = sw.demo()
    if "--sae" in sys.argv:
        model, tokenizer = scope.model, scope.tokenizer
        scope = sw.Scope(model, tokenizer, saes=[sw.load_sae(sys.argv[sys.argv.index("--sae") + 1])])
    sae = scope.sae()
    stats = scope.feature_stats()
    vectors = probe_vectors(scope)
    definitions = {by: concept_features(scope, by, vectors) for by in ("firing", "activation")}
    if "--extended" in sys.argv:  # 143 sentences, six definitions
        every = {**definitions, **probe_concepts(scope), **evidence_concepts(scope), **label_concepts(scope)}
        print(extended(scope, every))
        return
    reserved = torch.tensor(sae.reserved_features, dtype=torch.long)
    scores = variants(stats)
    counts = ("top3_first", "first_first", "top3_all", "first_all")
    hits = {(v, by): dict.fromkeys(counts, 0) for v in scores for by in definitions}
    examples = []
    for name, sentences in TESTS.items():
        for j, sentence in enumerate(sentences):
            a = token_vector(scope, sentence, test_word(name, sentence))
            for variant, score in scores.items():
                s = score(a).clone()
                s[a <= 0] = -float("inf")
                if not variant.endswith("(before)") and len(reserved):
                    s[reserved] = -float("inf")
                top3 = [
                    f
                    for f in torch.sort(s, descending=True, stable=True).indices[:3].tolist()
                    if s[f] > -1e30
                ]
                for by, concepts in definitions.items():
                    in3, first = bool(set(top3) & concepts[name]), bool(top3 and top3[0] in concepts[name])
                    h = hits[variant, by]
                    h["top3_all"] += in3
                    h["first_all"] += first
                    if j == 0:
                        h["top3_first"] += in3
                        h["first_first"] += first
                if variant.startswith("default") and j == 0:
                    sizes = ", ".join(f"{len(c[name])} by {by}" for by, c in definitions.items())
                    examples.append(f"  {name:12s} {top3} concept features: {sizes}")
    timing = measure_cost(scope)
    print(
        f"# concept ranking, {platform.node()} ({platform.processor() or platform.machine()}), "
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC"
    )
    print(f"statistics: {stats.source} ({stats.n_tokens:,} tokens)")
    print("Concept features by firing rate | by mean activation; each: top 3 (12 first sentences), first row")
    print("(12), top 3 (all 36), first row (36)")
    print(
        "| score | firing: top 3 (12) | first (12) | top 3 (36) | first (36) | activation: top 3 (12) | first (12) | top 3 (36) | first (36) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for variant in scores:
        cells = [
            f"{hits[variant, by][c]}/{12 if c.endswith('first') else 36}"
            for by in definitions
            for c in counts
        ]
        print(f"| {variant} | {' | '.join(cells)} |")
    print("default top 3 per class (first sentence):")
    print("\n".join(examples))
    print(timing)


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[repeats // 2] * 1e3


def measure_cost(scope: sw.Scope, repeats: int = 21) -> str:
    """Median times of `scope.activations(text)`, of `.top_features(10)` ranked "specific" and ranked
    "activation" on its result, and of the score + sort alone (statistics already loaded, as after the
    first ranking of a session); with torch's default threads and with one thread."""
    text = "The Eiffel Tower is in Paris, the capital of France."
    acts = scope.activations(text)
    acts.top_features(10)  # statistics loaded once
    stats, peak = acts.stats, acts.values.max(dim=0).values
    lines = []
    for threads in (torch.get_num_threads(), 1):
        torch.set_num_threads(threads)
        base = _median_ms(lambda: scope.activations(text), repeats)
        specific = _median_ms(lambda: acts.top_features(10), repeats)
        raw = _median_ms(lambda: acts.top_features(10, rank="activation"), repeats)
        score = _median_ms(lambda: ranking.top_features(peak, stats, 10, reserved=(0, 1)), repeats)
        view = _median_ms(lambda: acts.widget(), repeats)
        view_raw = _median_ms(lambda: acts.widget(rank="activation"), repeats)
        lines.append(
            f"{threads} torch thread(s), median of {repeats}: scope.activations {base:.1f} ms; top_features(10) "
            f"rank='specific' {specific:.2f} ms, rank='activation' {raw:.2f} ms; score + sort alone {score:.3f} ms; "
            f"token view (lists + colours) rank='specific' {view:.1f} ms, rank='activation' {view_raw:.1f} ms"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
