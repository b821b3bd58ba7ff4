"""Document profiles (corpus/profiles) and references to parts of documents, on hand-made files."""

from __future__ import annotations

from pathlib import Path

import pytest

from gcm_qa import gcm, profiles
from gcm_qa.chunking import chunk_document
from gcm_qa.cleaning import clean_pages
from gcm_qa.profiles import PartAlias, Profile, ProfileError, Subheading, ThematicArea
from gcm_qa.structure import layout
from gcm_qa.types import DocMeta, Reference

ROOT = Path(__file__).resolve().parents[1]

# An invented country's migration plan: its own front matter, areas in chapter 1, a named annex.
PLAN_PROFILE = """
top_titles = ["letter from the minister"]
sub_titles = ["lessons"]
area_chapter = 1

[[areas]]
number = 1
title = "Borders"
objectives = [11, 23]

[[areas]]
number = 2
title = "Remittances"
objectives = [20, 23]

[[parts]]
words = ["welcome", "letter"]
kind = "annex"
number = 4

[[subheadings]]
name = "lessons"
words = ["lessons?", "lecciones"]
"""

PLAN = """Letter from the Minister

We present the national plan of Freedonia.

1. Areas of the plan

1.2 Money sent home

Remittances doubled in two years.

Lessons

Transfers must get cheaper.
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / "profiles" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_a_valid_profile_is_read_into_typed_fields(tmp_path: Path) -> None:
    profile = profiles.load(write(tmp_path, "plan.toml", PLAN_PROFILE))
    assert profile.top_titles == frozenset({"letter from the minister"})
    assert profile.area_chapter == 1
    assert profile.area_titles == {1: "Borders", 2: "Remittances"}
    assert profile.objectives_of([2, 9]) == {20, 23}  # an area the profile lacks groups nothing
    assert profile.parts == (PartAlias(("welcome", "letter"), "annex", 4),)
    assert profile.parts[0].reference == Reference("annex", 4)
    assert profile.subheadings == (Subheading("lessons", ("lessons?", "lecciones")),)
    assert profile.pages == "contents"  # the default


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("top_titles = [", "not valid TOML"),
        ("colour = 'blue'", "unknown key 'colour'"),
        ("[[areas]]\nnumber = 1\ntitle = 'x'\nobjectives = [1]\nwidth = 2", "unknown key 'areas.0.width'"),
        ("area_chapter = 'two'", "area_chapter"),
        ("[[areas]]\nnumber = 1\ntitle = 'x'\nobjectives = [24]", "between 1 and 23"),
        ("[[parts]]\nwords = ['x']\nkind = 'chapter'\nnumber = 1", "unknown kind of reference"),
        ("[[parts]]\nwords = ['x']\nkind = 'annex'", "needs a number"),
        ("[[subheadings]]\nname = 'x'\nwords = ['(']", "not valid regular expressions"),
        ("top_titles = ['Foreword']", "lower case"),
        ("pages = 'pdf'", "pages"),
    ],
)
def test_a_bad_profile_is_an_error_naming_the_file_and_the_reason(tmp_path: Path, text: str, reason: str) -> None:
    path = write(tmp_path, "bad.toml", text)
    with pytest.raises(ProfileError) as caught:
        profiles.load(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert reason in str(caught.value)


def test_a_document_takes_its_own_profile_else_its_kind_s_else_the_empty_one(tmp_path: Path) -> None:
    own = write(tmp_path, "plan.toml", PLAN_PROFILE)
    kind = write(tmp_path, "kinds/questionnaire.toml", "sub_titles = ['answers']")
    assert profiles.path_for(tmp_path, "plan", "questionnaire") == own
    assert profiles.path_for(tmp_path, "form-a", "questionnaire") == kind
    assert profiles.for_document(tmp_path, "form-a", "questionnaire").sub_titles == frozenset({"answers"})
    assert profiles.for_document(tmp_path, "memo", "report") is profiles.EMPTY
    assert profiles.for_document(tmp_path / "elsewhere", "plan", "report") is profiles.EMPTY  # no profiles folder


def test_profiles_merge_for_questions_over_several_documents() -> None:
    first = Profile(areas=(ThematicArea(1, "Borders", (11,)),), subheadings=(Subheading("lessons", ("lessons",)),))
    second = Profile(areas=(ThematicArea(1, "Other", (5,)), ThematicArea(2, "Money", (20,))),
                     parts=(PartAlias(("letter",), "annex", 4),), subheadings=(Subheading("lessons", ("x",)),))
    merged = profiles.merge([first, second])
    assert merged.area_titles == {1: "Borders", 2: "Money"}  # the first document's area 1
    assert merged.parts == second.parts
    assert merged.subheadings == first.subheadings
    assert profiles.merge([]) == profiles.EMPTY


def test_a_changed_profile_changes_the_fingerprint(tmp_path: Path) -> None:
    empty = profiles.fingerprint(tmp_path)
    write(tmp_path, "plan.toml", PLAN_PROFILE)
    with_plan = profiles.fingerprint(tmp_path)
    write(tmp_path, "plan.toml", PLAN_PROFILE.replace("Borders", "Frontiers"))
    assert len({empty, with_plan, profiles.fingerprint(tmp_path)}) == 3


def test_the_profile_shapes_headings_and_tags(tmp_path: Path) -> None:
    profile = profiles.load(write(tmp_path, "plan.toml", PLAN_PROFILE))
    meta = DocMeta("plan", "plan.txt", "Plan")

    def sections(p: Profile) -> list[tuple[list[str], list[int]]]:
        doc = layout(clean_pages([(None, PLAN)]), p)
        return [(c.section, c.areas) for c in chunk_document(meta, doc, 400, 0, p)]

    assert sections(profile) == [
        (["Letter from the Minister"], []),
        (["1. Areas of the plan"], []),
        (["1. Areas of the plan", "1.2 Money sent home"], [2]),
        (["1. Areas of the plan", "Lessons"], []),  # a sub-title is a level-2 heading
    ]
    # without the profile: no front-matter title, no sub-title, no thematic areas
    assert [areas for _, areas in sections(profiles.EMPTY)] == [[]] * len(sections(profiles.EMPTY))
    assert all("Lessons" not in path for path, _ in sections(profiles.EMPTY))


def test_an_objective_in_every_area_adds_no_area() -> None:
    profile = Profile(areas=(ThematicArea(1, "Borders", (11, 23)), ThematicArea(2, "Money", (20, 23))))
    assert gcm.tag("Objective 23 and objective 20.", [], profile) == ([2], [20, 23])


def test_the_questionnaire_default_groups_objectives_as_the_report_does() -> None:
    """Both state the table of Annex 1; the report says it shaped the questionnaires' forms."""
    report = profiles.load(ROOT / "corpus" / "profiles" / "gcm-regional-review-lac-2022.toml")
    questionnaire = profiles.load(profiles.SHIPPED / "kinds" / "questionnaire.toml")
    assert questionnaire.areas == report.areas
    assert sorted({o for a in report.areas for o in a.objectives}) == list(range(1, 24))


# --- references --------------------------------------------------------------------------------


def test_a_reference_is_a_numbered_or_a_named_part() -> None:
    assert str(Reference("thematic area", 4)) == "thematic area 4"
    assert str(Reference("heading", name="challenges")) == "heading challenges"
    assert Reference("annex", 2) == Reference("annex", 2) != Reference("table", 2)
    assert len({Reference("annex", 2), Reference("annex", 2)}) == 1  # hashable: cached per index
    for bad in (lambda: Reference("annex"), lambda: Reference("annex", 2, "x"), lambda: Reference("title", 3),
                lambda: Reference("title"), lambda: Reference("chapter", 1)):
        with pytest.raises(ValueError):
            bad()
