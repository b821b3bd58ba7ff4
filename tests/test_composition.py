"""How an answer is composed, on small hand-made documents (an invented country, Ruritania): lists,
repeated sentences, two-part questions and bullets."""

# ruff: noqa: E501 - the documents keep one paragraph a line, as a text export has them

from __future__ import annotations

from pathlib import Path

from gcm_qa.engine import Engine

REMITTANCES = """1. Remittances in Ruritania

Remittances sent by Ruritanian workers abroad reached record levels in 2021, and the government studied how to lower their cost.

To make remittances do the most for families and communities, the Ruritanian plan says that States should act on several fronts at once:
- Preventing collusion among money transfer providers that keeps fees artificially high in the corridors most used by migrant workers;
- Reducing transfer costs, with the disaggregation of components so that senders can compare the exchange margin and the fixed fee;
- Promoting financial education for recipient households, so that remittances are saved and invested as well as spent;
- Opening bank accounts for migrants regardless of their status, with identity documents issued by consulates accepted;
- Linking remittances to local development projects chosen by the communities that receive the money.

2. Labour migration

Seasonal workers from Ruritania travel each year to harvest fruit in neighbouring countries.
"""

PRINCIPLES = """1. The Ruritanian migration charter

The Ruritanian migration charter is based on a set of cross-cutting and interdependent guiding principles.

The Ruritanian migration charter is based on a set of cross-cutting and interdependent guiding principles: people-centredness; international cooperation; national sovereignty; rule of law; sustainable development; and human rights.

2. Ports

Ruritania has three sea ports on its northern coast.
"""

STORMS = """1. The storms of 2020

Storms Alba and Bruno struck the Ruritanian coast in November 2020, one after the other.

2. Their consequences

Across the coastal provinces, the two storms affected more than 4 million people, destroying homes and harvests.

3. Reconstruction

Reconstruction of the coastal roads began the following spring.
"""

FORUM = """1. Participation of migrants

- In Ruritania, there is a Standing Forum of Migrants and Refugees, led by the Office of the Ombudsman, where migrant associations meet the ministries every quarter.
- Migrant associations also take part in municipal councils in the capital.

2. Data

The national statistics office publishes migration figures every year.
"""


def _engine(make_engine, tmp_path: Path, name: str, text: str) -> Engine:
    engine = make_engine()
    (tmp_path / "corpus" / name).write_text(text, encoding="utf-8")
    engine.build()
    return engine


def test_a_list_too_long_for_the_answer_shows_every_item_by_its_head(make_engine, tmp_path: Path) -> None:
    engine = _engine(make_engine, tmp_path, "remittances.txt", REMITTANCES)
    answer = engine.ask("How should States act on remittances to do the most for families and communities?")
    assert not answer.abstained
    for item in ("Preventing collusion among money transfer", "Reducing transfer costs", "Promoting financial education"):
        assert item in answer.answer
    # the citation quotes the list whole, so the cut items can be checked
    assert any("Reducing transfer costs, with the disaggregation of components" in c.quote for c in answer.citations)
    assert len(answer.answer) < engine.settings.answer.max_list_chars + 60  # text plus [n] markers


def test_a_sentence_that_an_answer_already_holds_is_not_quoted_again(make_engine, tmp_path: Path) -> None:
    engine = _engine(make_engine, tmp_path, "charter.txt", PRINCIPLES)
    answer = engine.ask("What are the guiding principles on which the Ruritanian migration charter is based?")
    # "…guiding principles." and "…guiding principles: people-centredness; …": only the longer one
    assert answer.answer.count("cross-cutting and interdependent guiding principles") == 1
    assert "people-centredness" in answer.answer


def test_each_part_of_a_two_part_question_gets_its_sentence(make_engine, tmp_path: Path) -> None:
    engine = _engine(make_engine, tmp_path, "storms.txt", STORMS)
    answer = engine.ask("When did storms Alba and Bruno strike and how many people did they affect?")
    assert "4 million" in answer.answer  # the figure
    assert "November 2020" in answer.answer  # and the date, from another passage


def test_a_bullet_quoted_alone_loses_its_bullet(make_engine, tmp_path: Path) -> None:
    engine = _engine(make_engine, tmp_path, "forum.txt", FORUM)
    answer = engine.ask("Who leads the Standing Forum of Migrants and Refugees in Ruritania?")
    assert answer.answer.startswith("In Ruritania, there is a Standing Forum of Migrants and Refugees")
    assert answer.citations[0].quote.lstrip().startswith("- In Ruritania")  # the quote stays exact
