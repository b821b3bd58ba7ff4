"""Evaluation metrics on hand-made inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from gcm_qa.evaluation import metrics as m
from gcm_qa.evaluation.gold import contains, norm


def test_norm_tolerates_whitespace_punctuation_case_and_ligatures() -> None:
    assert norm("Decree  216, of 2021.") == norm("decree 216 of 2021")
    assert contains("The Oﬃcial text:\n\nDelegations of countries | 249", "official text delegations of countries 249")


def test_first_hit_rank_and_char_budget() -> None:
    passages = ["nothing here", "x" * 3990 + " the quote", "the quote again"]
    assert m.first_hit_rank(passages, ["THE QUOTE"]) == 2
    assert m.first_hit_rank(passages, ["absent"]) is None
    # the second passage's quote starts past the 4,000-character budget
    assert not m.hit_within_chars(["a" * 100, "b" * 3905 + " the quote"], ["the quote"])
    assert m.hit_within_chars(["a" * 100, "the quote"], ["the quote"])


def test_retrieval_summary() -> None:
    s = m.retrieval_summary([1, 3, None, 7], [True, True, False, False])
    assert s["hit@1"] == 0.25 and s["hit@3"] == 0.5 and s["hit@5"] == 0.5 and s["hit@10"] == 0.75
    assert s["mrr@10"] == pytest.approx((1 + 1 / 3 + 1 / 7) / 4)
    assert s["hit@4000chars"] == 0.5


def test_answer_precision_counts_the_sentences_that_carry_the_answer() -> None:
    evidence = ["The ferry carried 412 passengers to the northern islands in 2019."]
    answer = ("The ferry carried 412 passengers to the northern islands in 2019. [1] "
              "The harbour was repainted. [2] Tickets cost 9 crowns. [2]")
    # the first sentence quotes the evidence, the third holds a key fact, the second neither
    assert m.answer_precision(answer, ["9 crowns"], evidence) == 2 / 3
    assert m.answer_sentences(answer)[1] == "The harbour was repainted."
    assert m.answer_precision("", ["9 crowns"], evidence) is None
    assert m.answer_precision("Nothing here matches at all. [1]", ["9 crowns"], evidence) == 0.0
    # a list shown as one sentence is one sentence, whatever its items say
    assert m.answer_sentences("Three ports: Alder; Birch; Cedar. [1]") == ["Three ports: Alder; Birch; Cedar."]
    assert m.answer_sentences("12. Build ports. 13. Dredge rivers. [1]") == ["12. Build ports.", "13. Dredge rivers."]


def test_key_fact_recall_and_citation_precision() -> None:
    assert m.key_fact_recall("In 2021, 936 people attended.", ["936", "50 countries"]) == 0.5
    evidence = ["in which 936 people, from 50 countries, 18 agencies from the United Nations system"]
    quotes = ["held from April 26 to 28, 2021, in which 936 people, from 50 countries", "Unrelated sentence here."]
    assert m.citation_precision(quotes, evidence) == 0.5
    assert m.citation_precision([], evidence) is None


def test_all_evidence_and_percentiles() -> None:
    assert m.all_evidence_in(["alpha beta", "gamma"], ["alpha", "gamma"])
    assert not m.all_evidence_in(["alpha beta"], ["alpha", "gamma"])
    assert m.percentile([1, 2, 3, 4], 50) == 2.5
    assert m.percentile([], 95) == 0.0


def test_thresholds_gate_floors_ceilings_and_baseline_margins(tmp_path: Path) -> None:
    from gcm_qa.evaluation.harness import check_thresholds

    result = {
        "retrieval": {
            "gcm-qa": {"overall": {"hit@5": 0.9, "mrr@10": 0.8}},
            "bm25": {"overall": {"hit@5": 0.87, "mrr@10": 0.6}},
        },
        "answers": {"overall": {"key_fact_recall": 0.5, "median_answer_chars": 420}},
        "versus_baselines": {
            "bm25": {"hit@5": {"ci95_low": -0.01, "ci95_high": 0.07}, "mrr@10": {"ci95_low": 0.05, "ci95_high": 0.3}},
            "dense": {"hit@5": {"ci95_low": -0.08, "ci95_high": 0.02},
                      "mrr@10": {"ci95_low": -0.2, "ci95_high": -0.01}},
        },
    }
    path = tmp_path / "t.toml"
    path.write_text(
        '[min]\n"retrieval.hit@5" = 0.85\n"answers.key_fact_recall" = 0.6\n'
        '[max]\n"answers.median_answer_chars" = 400\n'
        '[above_baseline.bm25]\n"retrieval.hit@5" = 0.05\n"retrieval.mrr@10" = 0.05\n'
        '[clearly_above_baseline]\nbm25 = ["retrieval.hit@5", "retrieval.mrr@10"]\n'
        '[not_clearly_below_baseline]\ndense = ["retrieval.hit@5", "retrieval.mrr@10"]\n'
    )
    failures = check_thresholds(result, path)
    assert len(failures) == 5
    assert any("hit@5" in f and "bm25" in f and "not clear" in f for f in failures)  # mrr@10's is above zero
    assert any("key_fact_recall" in f and "below" in f for f in failures)
    assert any("median_answer_chars" in f and "above the ceiling" in f for f in failures)
    assert any("hit@5" in f and "0.05 above the bm25" in f for f in failures)
    assert any("mrr@10" in f and "dense" in f and "clearly negative" in f for f in failures)  # hit@5's reaches 0.02


def test_per_question_values_average_to_the_summary() -> None:
    ranks = [1, 3, None, 7, 12]
    summary = m.retrieval_summary(ranks, [True] * 5)
    assert sum(m.per_question(ranks, "hit@5")) / 5 == summary["hit@5"]
    assert sum(m.per_question(ranks, "mrr@10")) / 5 == pytest.approx(summary["mrr@10"])


def test_paired_bootstrap_separates_a_clear_gain_from_noise() -> None:
    assert m.paired_bootstrap([1.0, 0.0, 1.0], [1.0, 0.0, 1.0]) == (0.0, 0.0, 0.0)
    clear = m.paired_bootstrap([1.0] * 60 + [0.0] * 10, [1.0] * 40 + [0.0] * 30)
    assert clear[0] == pytest.approx(20 / 70) and clear[1] > 0  # the interval stays above zero
    one_question = m.paired_bootstrap([1.0] * 41 + [0.0] * 29, [1.0] * 40 + [0.0] * 30)
    assert one_question[1] <= 0 <= one_question[2]
    with pytest.raises(ValueError):
        m.paired_bootstrap([1.0], [1.0, 0.0])


def test_changes_between_runs_are_listed_by_question() -> None:
    from gcm_qa.evaluation.compare import changes, markdown_changes

    def row(qid: str, rank: int | None, kfr: float, cp: float | None, abstained: bool, answerable: bool = True):
        return {"id": qid, "type": "factoid", "answerable": answerable, "rank": rank, "key_fact_recall": kfr,
                "citation_precision": cp, "abstained": abstained}

    before = [row("a", 3, 0.5, 0.5, False), row("b", 1, 1.0, 1.0, False), row("c", None, 0.0, None, False, False),
              row("d", 1, 1.0, 1.0, False)]
    after = [row("a", 1, 1.0, 1.0, False), row("b", 2, 1.0, 0.5, False), row("c", None, 0.0, None, True, False),
             row("d", 1, 1.0, 1.0, False), row("new", 1, 1.0, 1.0, False)]
    found = {c["id"]: c for c in changes(before, after)}
    assert set(found) == {"a", "b", "c"}  # d is unchanged, "new" was not in the earlier run
    assert found["a"]["verdict"] == "better" and found["a"]["rank"] == (3, 1)
    assert found["b"]["verdict"] == "worse"
    assert found["c"]["verdict"] == "better"  # an unanswerable question now refused
    assert found["c"]["key_fact_recall"] == (None, None)  # meaningless for it: not shown
    table = markdown_changes(list(found.values()), "run.json")
    assert table.startswith("3 questions changed since run.json: 2 better, 1 worse, 0 mixed.")
    assert "| a | factoid | better | 3 → 1 | 0.50 → 1.00 | – | 0.50 → 1.00 | no |" in table
