"""Small hand-written retrieval data shared by the task tests."""

from __future__ import annotations

import pyarrow as pa

from buildbench.tasks import TaskInfo

# Each pair: a short document on its own topic, and a query that asks for it in other words.
EASY_PAIRS = [
    ("Sourdough", "A sourdough starter is a fermented mix of flour and water that holds wild yeast and lactic bacteria used to leaven bread.",
     "what living culture makes naturally leavened loaves rise"),
    ("Volcanoes", "Magma rises through cracks in the crust and erupts as lava, ash and gas when pressure inside the volcano builds up.",
     "why do mountains of molten rock explode"),
    ("Honeybees", "Worker bees perform a waggle dance to tell hive mates the direction and distance of flowers rich in nectar.",
     "how do bees communicate where food is"),
    ("Chess openings", "The Sicilian Defence begins with 1.e4 c5 and is the most popular reply by black to the king's pawn opening.",
     "popular answer for black against e4 in chess"),
    ("Photosynthesis", "Plants capture sunlight in chlorophyll and turn carbon dioxide and water into glucose, releasing oxygen.",
     "how do green leaves make sugar from light"),
    ("Mortgage rates", "A fixed-rate mortgage keeps the same interest rate for the whole loan term, so monthly payments never change.",
     "home loan where the interest stays constant"),
    ("Marathon training", "Runners preparing for 42 kilometres build weekly mileage slowly and include one long run every week.",
     "how to prepare for a long distance road race"),
    ("Coffee roasting", "Light roasts keep more of the bean's acidity and fruity notes, while dark roasts taste bitter and smoky.",
     "difference in flavour between light and dark roasted beans"),
    ("Tides", "The gravitational pull of the moon on the oceans produces two high tides and two low tides each day.",
     "what causes the sea level to rise and fall daily"),
    ("Vaccines", "A vaccine trains the immune system by exposing it to a harmless piece of a pathogen so it can react faster later.",
     "how do immunisations teach the body to fight disease"),
    ("Compound interest", "Interest that is added to the principal earns interest itself, so savings grow exponentially over time.",
     "why savings grow faster when earnings are reinvested"),
    ("Solar panels", "Photovoltaic cells made of silicon convert sunlight directly into electricity without moving parts.",
     "devices that turn sunshine into electric power"),
    ("Origami", "Origami is the Japanese art of folding a single square of paper into shapes such as cranes without cutting it.",
     "traditional paper folding craft from Japan"),
    ("Glaciers", "Glaciers form where more snow falls in winter than melts in summer, compressing into slowly flowing ice.",
     "how do rivers of ice form in mountains"),
    ("Inflation", "When the general price level rises, each unit of currency buys fewer goods and services than before.",
     "loss of purchasing power as prices go up"),
    ("Guitar tuning", "Standard guitar tuning sets the six strings, from lowest to highest, to E A D G B E.",
     "which notes are the strings of a guitar tuned to"),
    ("Sleep", "During deep sleep the brain consolidates memories and the body repairs tissue and releases growth hormone.",
     "what happens to the body and memory while resting at night"),
    ("Recycling aluminium", "Recycling an aluminium can uses about five percent of the energy needed to make a new one from ore.",
     "energy saved by reusing metal drink cans"),
    ("Hurricanes", "Tropical cyclones draw energy from warm ocean water and spin around a calm centre called the eye.",
     "where do big tropical storms get their power"),
    ("Password security", "Long passphrases made of several random words are harder to crack than short passwords with symbols.",
     "how to make a login secret that is hard to guess"),
]

DISTRACTORS = [
    ("Tea", "Green tea is made from leaves that are steamed or pan-fired soon after picking to stop oxidation."),
    ("Bicycles", "Derailleur gears move the chain between sprockets so a cyclist can keep a steady pedalling cadence."),
    ("Libraries", "Public libraries lend books, offer internet access and host reading groups for children and adults."),
    ("Penguins", "Emperor penguins breed during the Antarctic winter, and males keep the egg warm on their feet."),
]


def easy_tables() -> tuple[pa.Table, pa.Table, pa.Table]:
    """20 queries, each paraphrasing one of 24 documents (4 are distractors); one relevant document each."""
    docs = [(f"doc{i}", t, x) for i, (t, x, _) in enumerate(EASY_PAIRS)]
    docs += [(f"noise{i}", t, x) for i, (t, x) in enumerate(DISTRACTORS)]
    corpus = pa.table({"id": [d[0] for d in docs], "title": [d[1] for d in docs], "text": [d[2] for d in docs]})
    queries = pa.table({"id": [f"q{i}" for i in range(len(EASY_PAIRS))], "text": [q for _, _, q in EASY_PAIRS]})
    qrels = pa.table(
        {
            "query-id": [f"q{i}" for i in range(len(EASY_PAIRS))],
            "corpus-id": [f"doc{i}" for i in range(len(EASY_PAIRS))],
            "score": pa.array([1] * len(EASY_PAIRS), pa.int64()),
        }
    )
    return corpus, queries, qrels


def graded_tables() -> tuple[pa.Table, pa.Table, pa.Table]:
    """The easy task with a second, more relevant (grade 2) document per query that the query does not describe.

    Models rank it anywhere, so scores fall well below 1 and depend on graded gains and the ideal DCG: a good
    case for checking that two metric implementations agree.
    """
    corpus, queries, _ = easy_tables()
    n = len(EASY_PAIRS)
    q_ids, c_ids, scores = [], [], []
    for i in range(n):
        q_ids += [f"q{i}", f"q{i}"]
        c_ids += [f"doc{i}", f"noise{i % len(DISTRACTORS)}" if i % 3 == 0 else f"doc{(i + 7) % n}"]
        scores += [1, 2]
    qrels = pa.table({"query-id": q_ids, "corpus-id": c_ids, "score": pa.array(scores, pa.int64())})
    return corpus, queries, qrels


def make_info(name: str = "EasyParaphrase", **kw) -> TaskInfo:
    defaults = dict(
        description="Twenty everyday topics; each query paraphrases one document.",
        domain="general",
        language="en",
        license="cc-by-4.0",
        provenance={"generator": "hand-written", "filters": ["none"], "seed": 0},
    )
    defaults.update(kw)
    return TaskInfo(name=name, **defaults)
