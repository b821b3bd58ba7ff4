"""The GCM's 23 objectives, their keywords, and the rules that tag a passage with objectives and
thematic areas.

The objectives are the Global Compact's own, the same for every document. Thematic areas are not:
which areas a document has, the objectives each groups, and which of its sections are an area come
from its profile (:mod:`gcm_qa.profiles`). Keywords are the distinctive words of each objective's
title plus the Spanish terms the voluntary reports use, so a chunk about detention is tagged with
objective 13 even when it never writes "Objective 13".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from gcm_qa.profiles import Profile
from gcm_qa.settings import RetrievalSettings

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
# A section titled by its thematic area: "Thematic area 3", "Área temática 3".
_AREA_TITLE = re.compile(r"^(?:Thematic area|[ÁáAa]rea tem[áa]tica) (\d)\b", re.I)


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


def area_of_section(section_path: Sequence[str], profile: Profile) -> int | None:
    """The thematic area a section belongs to: the first title of its path that names one of the
    profile's areas, by name ("Thematic area 3") or by the numbering the profile declares
    (``area_chapter`` 2: "2.3 ..." is area 3). A document whose profile has no areas has none."""
    known = profile.area_titles
    chapter = re.compile(rf"^{profile.area_chapter}\.(\d)\b") if profile.area_chapter is not None else None
    for title in section_path:
        title = title.strip()
        m = (chapter.match(title) if chapter else None) or _AREA_TITLE.match(title)
        if m and int(m.group(1)) in known:
            return int(m.group(1))
    return None


def tag(text: str, section_path: Sequence[str], profile: Profile) -> tuple[list[int], list[int]]:
    """Thematic areas and objectives a chunk concerns.

    The section's own area counts first; an objective named outright adds its areas; keyword
    matches add objectives (restricted to the section's area when the section has one, since a
    word like "integration" in area 3 rarely means objective 16). An objective every area groups
    (international cooperation) says nothing about which area a passage concerns, so it adds none.
    """
    by_area = profile.area_objectives
    shared = set.intersection(*(set(objs) for objs in by_area.values())) if by_area else set()
    section_area = area_of_section(section_path, profile)
    explicit = explicit_objectives(text) | explicit_objectives(" ".join(section_path))
    keyword = keyword_objectives(text)
    if section_area is not None:
        keyword &= set(by_area[section_area])
    objectives = sorted(explicit | keyword)
    areas = {section_area} if section_area is not None else set()
    areas |= {a for a, objs in by_area.items() for o in explicit if o in objs and o not in shared}
    if section_area is None:
        areas |= {a for a, objs in by_area.items() for o in keyword if o in objs and o not in shared}
    return sorted(areas), objectives


def choose_objective(
    title_similarity: Sequence[float], question: str, settings: RetrievalSettings, allowed: Iterable[int] = ()
) -> int | None:
    """The objective whose title (``title_similarity[n - 1]``: the question's cosine with objective
    n's title) and keywords best match the question, among ``allowed`` (the objectives of the
    thematic areas the question names) when there are any; None when no objective stands out.

    The titles are the GCM's own words, so a question about "locking up migrants" reaches
    objective 13 through its title's embedding even when no keyword matches. A keyword of the
    objective in the question counts for ``settings.objective_keyword_bonus`` of cosine; without one,
    the best title must reach ``objective_min_similarity`` and lead the next by ``objective_min_margin``.
    """
    allowed = set(allowed) or set(OBJECTIVES)
    hits = keyword_objectives(question)
    scored = sorted(
        (
            (float(title_similarity[n - 1]) + (settings.objective_keyword_bonus if n in hits else 0.0), n)
            for n in allowed
        ),
        reverse=True,
    )
    if not scored:
        return None
    best_score, best = scored[0]
    runner_up = scored[1][0] if len(scored) > 1 else 0.0
    if best in hits and best_score > runner_up:
        return best
    if best_score >= settings.objective_min_similarity and best_score - runner_up >= settings.objective_min_margin:
        return best
    return None
