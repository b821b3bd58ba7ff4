"""The GCM's 23 objectives, the five MMPTF thematic areas that group them, and tagging rules.

The grouping is the one printed in Annex 1 of the regional review (objective 23, international
cooperation, belongs to every area). Keywords are the distinctive words of each objective's title
plus the Spanish terms the voluntary reports use, so a chunk about detention is tagged with
objective 13 even when it never writes "Objective 13".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

OBJECTIVES: dict[int, str] = {
    1: "Collect and utilize accurate and disaggregated data as a basis for evidence-based policies",
    2: "Minimize the adverse drivers and structural factors that compel people to leave their country of origin",
    3: "Provide accurate and timely information at all stages of migration",
    4: "Ensure that all migrants have proof of legal identity and adequate documentation",
    5: "Enhance availability and flexibility of pathways for regular migration",
    6: "Facilitate fair and ethical recruitment and safeguard conditions that ensure decent work",
    7: "Address and reduce vulnerabilities in migration",
    8: "Save lives and establish coordinated international efforts on missing migrants",
    9: "Strengthen the transnational response to smuggling of migrants",
    10: "Prevent, combat and eradicate trafficking in persons in the context of international migration",
    11: "Manage borders in an integrated, secure and coordinated manner",
    12: "Strengthen certainty and predictability in migration procedures for appropriate screening, "
    "assessment and referral",
    13: "Use migration detention only as a measure of last resort and work towards alternatives",
    14: "Enhance consular protection, assistance and cooperation throughout the migration cycle",
    15: "Provide access to basic services for migrants",
    16: "Empower migrants and societies to realize full inclusion and social cohesion",
    17: "Eliminate all forms of discrimination and promote evidence-based public discourse to shape "
    "perceptions of migration",
    18: "Invest in skills development and facilitate mutual recognition of skills, qualifications and competences",
    19: "Create conditions for migrants and diasporas to fully contribute to sustainable development in all countries",
    20: "Promote faster, safer and cheaper transfer of remittances and foster financial inclusion of migrants",
    21: "Cooperate in facilitating safe and dignified return and readmission, as well as sustainable reintegration",
    22: "Establish mechanisms for the portability of social security entitlements and earned benefits",
    23: "Strengthen international cooperation and global partnerships for safe, orderly and regular migration",
}

THEMATIC_AREAS: dict[int, str] = {
    1: "Promoting a migration discourse, policies and planning based on facts and data",
    2: "Protecting the human rights, safety and well-being of migrants",
    3: "Addressing irregular migration, including border management and transnational crime",
    4: "Facilitating regular migration and decent work, and the development effects of mobility",
    5: "Improving social inclusion and integration of migrants",
}

AREA_OBJECTIVES: dict[int, tuple[int, ...]] = {
    1: (1, 3, 17, 23),
    2: (2, 7, 8, 12, 13, 23),
    3: (9, 10, 11, 14, 21, 23),
    4: (5, 6, 18, 19, 20, 23),
    5: (4, 15, 16, 22, 23),
}

# Word stems (lower case, matched at word starts) that mark an objective's topic, English and Spanish.
OBJECTIVE_KEYWORDS: dict[int, tuple[str, ...]] = {
    1: ("disaggregated data", "migration statistic", "statistical", "census", "administrative record",
        "estadística", "datos desagregados"),
    2: ("adverse drivers", "structural causes", "structural factors", "climate change", "disaster",
        "environmental degradation", "causas estructurales", "cambio climático"),
    3: ("timely information", "information desk", "information campaign", "información oportuna"),
    4: ("legal identity", "identity document", "documentation", "birth registration", "statelessness",
        "identidad", "apatridia", "documentación"),
    5: ("regular pathway", "pathways for regular", "regularisation", "regularization", "visa",
        "humanitarian visa", "temporary protection", "regularización", "visado"),
    6: ("recruitment", "decent work", "labour rights", "labor rights", "domestic work", "trabajo decente",
        "reclutamiento", "contratación"),
    7: ("vulnerabilit", "vulnerable", "unaccompanied", "gender-based violence", "vulnerabilidad"),
    8: ("missing migrants", "disappear", "deaths of migrants", "save lives", "search and rescue",
        "identification of remains", "desaparecid"),
    9: ("smuggling", "smuggler", "tráfico ilícito de migrantes"),
    10: ("trafficking", "trata de personas", "trata"),
    11: ("border management", "border control", "manage borders", "borders", "gestión de fronteras",
         "frontera"),
    12: ("screening", "referral", "asylum procedure", "refugee status determination", "due process",
         "procedimientos migratorios"),
    13: ("detention", "detained", "alternatives to detention", "detención", "privación de libertad"),
    14: ("consular", "consulate", "consular"),
    15: ("basic services", "access to health", "health services", "education", "vaccination",
         "servicios básicos", "salud", "educación"),
    16: ("inclusion", "integration", "social cohesion", "xenophobia", "inclusión", "integración",
         "cohesión social"),
    17: ("discrimination", "xenophobia", "public discourse", "racism", "discriminación", "xenofobia"),
    18: ("skills", "qualifications", "recognition of degrees", "validation of degrees", "competences",
         "homologación", "títulos"),
    19: ("diaspora", "sustainable development", "contributions of migrants", "diáspora"),
    20: ("remittance", "financial inclusion", "remesa", "inclusión financiera"),
    21: ("return", "readmission", "reintegration", "returnees", "deportation", "retorno", "reintegración",
         "deportación"),
    22: ("social security", "portability", "pension", "seguridad social", "portabilidad"),
    23: ("international cooperation", "global partnership", "cooperación internacional"),
}

_EXPLICIT = re.compile(r"\bobje(?:ctive|tivo)s?\s+((?:\d{1,2}(?:\s*(?:,|and|y|&)\s*)?)+)", re.I)
_AREA_IN_TITLE = re.compile(r"^(?:2\.(\d)\b|Thematic area (\d)\b|[ÁáAa]rea tem[áa]tica (\d)\b)", re.I)


def explicit_objectives(text: str) -> set[int]:
    """Objectives named outright: 'Objective 17', 'objectives 5, 6 and 18', 'objetivo 13'."""
    found: set[int] = set()
    for m in _EXPLICIT.finditer(text):
        found.update(int(n) for n in re.findall(r"\d{1,2}", m.group(1)) if 1 <= int(n) <= 23)
    return found


def keyword_objectives(text: str) -> set[int]:
    low = text.lower()
    return {
        obj
        for obj, words in OBJECTIVE_KEYWORDS.items()
        if any(re.search(rf"(?<!\w){re.escape(w)}", low) for w in words)
    }


def area_of_section(section_path: Sequence[str]) -> int | None:
    """The thematic area a section belongs to, from the report's numbering (2.k is area k)."""
    for title in section_path:
        m = _AREA_IN_TITLE.match(title.strip())
        if m:
            return int(next(g for g in m.groups() if g))
    return None


def tag(text: str, section_path: Sequence[str]) -> tuple[list[int], list[int]]:
    """Thematic areas and objectives a chunk concerns.

    The section's own area counts first; an objective named outright adds its areas; keyword
    matches add objectives (restricted to the section's area when the section has one, since a
    word like "integration" in area 3 rarely means objective 16).
    """
    section_area = area_of_section(section_path)
    explicit = explicit_objectives(text) | explicit_objectives(" ".join(section_path))
    keyword = keyword_objectives(text)
    if section_area is not None:
        keyword &= set(AREA_OBJECTIVES[section_area])
    objectives = sorted(explicit | keyword)
    areas = {section_area} if section_area is not None else set()
    areas |= {a for a, objs in AREA_OBJECTIVES.items() for o in explicit if o in objs and o != 23}
    if section_area is None:
        areas |= {a for a, objs in AREA_OBJECTIVES.items() for o in keyword if o in objs and o != 23}
    return sorted(areas), objectives


def objectives_of_areas(areas: Iterable[int]) -> set[int]:
    return {o for a in areas for o in AREA_OBJECTIVES.get(a, ())}


# Choosing the objective a question asks for by topic ("Which objective deals with detention?").
# A keyword of the objective in the question counts for this much cosine; without one, the best
# title must be at least this similar to the question and this far ahead of the next.
KEYWORD_BONUS = 0.15
MIN_TITLE_SIMILARITY = 0.45
MIN_MARGIN = 0.05


def choose_objective(
    title_similarity: Sequence[float], question: str, areas: Iterable[int] = ()
) -> int | None:
    """The objective whose title (``title_similarity[n - 1]``: the question's cosine with objective
    n's title) and keywords best match the question, among the objectives of ``areas`` when the
    question names thematic areas; None when no objective stands out.

    The titles are the GCM's own words, so a question about "locking up migrants" reaches
    objective 13 through its title's embedding even when no keyword matches.
    """
    allowed = objectives_of_areas(areas) or set(OBJECTIVES)
    hits = keyword_objectives(question)
    scored = sorted(
        ((float(title_similarity[n - 1]) + (KEYWORD_BONUS if n in hits else 0.0), n) for n in allowed),
        reverse=True,
    )
    if not scored:
        return None
    best_score, best = scored[0]
    runner_up = scored[1][0] if len(scored) > 1 else 0.0
    if best in hits and best_score > runner_up:
        return best
    if best_score >= MIN_TITLE_SIMILARITY and best_score - runner_up >= MIN_MARGIN:
        return best
    return None
