"""One QTI assessmentItem -> one `Item`: its type, stem, options or blanks, key and points.

Which item types (see `paperpack.qti` for the scoring rules in full):

- one `choiceInteraction`, cardinality single -> single_choice, multiple -> multiple_choice;
- one or more `textEntryInteraction` -> fill_blank, one blank per interaction;
- one `extendedTextInteraction` -> essay.

Anything else (another interaction, two questions in one item, templates, adaptive items)
is an error naming the item, so nothing is silently dropped.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element

from paperpack.model import Blank, Item, Normalisation, Option
from paperpack.qti.body import BodyWriter
from paperpack.qti.declarations import (
    ItemSource,
    MapEntry,
    Response,
    child,
    id_problem,
    int_attribute,
)
from paperpack.qti.scoring import choice_scoring, points_for
from paperpack.qti.source import local_name

SUPPORTED = ("choiceInteraction", "textEntryInteraction", "extendedTextInteraction")
ESSAY_LENGTH_FACTOR = 5  # max_length = 5 x expectedLength: a generous bound, never a target
_EPSILON = 1e-9


def convert_item(source: ItemSource, writer: BodyWriter) -> Item | None:
    """The Item for `source`, or None when it cannot be imported (errors in the report)."""
    body = child(source.root, "itemBody")
    if body is None:
        source.report.error(f"{source.where}: has no itemBody; nothing to show")
        return None
    source.interactions = [e for e in body.iter() if local_name(e).endswith("Interaction")]
    kinds = [local_name(e) for e in source.interactions]
    unsupported = sorted({k for k in kinds if k not in SUPPORTED})
    for kind in unsupported:
        source.report.error(
            f"{source.where}: {kind} is not supported; supported interactions: "
            + ", ".join(SUPPORTED)
        )
    if unsupported:
        return None
    if not kinds:
        source.report.error(f"{source.where}: has no interaction; nothing to answer")
        return None
    if len(set(kinds)) > 1 or (kinds[0] != "textEntryInteraction" and len(kinds) > 1):
        source.report.error(
            f"{source.where}: asks {len(kinds)} questions ({', '.join(kinds)}); "
            "an item here asks one: split it into separate items"
        )
        return None
    for interaction in source.interactions:
        writer.check_attributes(interaction)
    if kinds[0] == "choiceInteraction":
        return _choice_item(source, writer, body)
    if kinds[0] == "textEntryInteraction":
        return _fill_blank_item(source, writer, body)
    return _essay_item(source, writer, body)


def _response(source: ItemSource, interaction: Element) -> Response | None:
    ident = interaction.get("responseIdentifier", "")
    response = source.responses.get(ident)
    if response is None:
        source.report.error(
            f"{source.where}: {local_name(interaction)} answers response {ident!r}, "
            "which has no responseDeclaration"
        )
    return response


def _stem(source: ItemSource, writer: BodyWriter, body: Element) -> str:
    stem = writer.html(body)
    if not stem:
        title = source.root.get("title", "")
        source.report.warn(
            f"{source.where}: stem: the body has no text, so the item's title became the "
            "stem; write the question into the stem in the YAML"
        )
        stem = writer.html(_paragraph(title or source.item_id))
    return stem


def _paragraph(text: str) -> Element:
    element = Element("div")
    paragraph = Element("p")
    paragraph.text = text
    element.append(paragraph)
    return element


def _prompt_html(writer: BodyWriter, interaction: Element) -> str:
    prompt = child(interaction, "prompt")
    return f"<div>{writer.html(prompt)}</div>" if prompt is not None else ""


# --- choice ---------------------------------------------------------------------------------


def _choice_item(source: ItemSource, writer: BodyWriter, body: Element) -> Item | None:
    interaction = source.interactions[0]
    response = _response(source, interaction)
    writer.interactions = {"choiceInteraction": lambda el: _prompt_html(writer, el)}
    stem = _stem(source, writer, body)
    options = _options(source, writer, interaction)
    if response is None or options is None:
        return None
    if response.cardinality not in ("single", "multiple"):
        source.report.error(
            f"{source.where}: choiceInteraction with cardinality {response.cardinality} "
            "is not supported (an ordered answer is an orderInteraction)"
        )
        return None
    key = _choice_key(source, response, {o.option_id for o in options})
    if key is None:
        return None
    single = response.cardinality == "single"
    _check_choice_counts(source, interaction, len(key), len(options), single)
    scoring, points, partial = choice_scoring(source, response, key, {o.option_id for o in options})
    return Item(
        item_id=source.item_id,
        type="single_choice" if single else "multiple_choice",
        stem=stem,
        points=points,
        options=options,
        key=key,
        shuffle_options=interaction.get("shuffle", "false").strip().lower() == "true",
        scoring="all_or_nothing" if single else scoring,
        partial_points=0.0 if single else partial,
    )


def _options(
    source: ItemSource, writer: BodyWriter, interaction: Element
) -> tuple[Option, ...] | None:
    options: list[Option] = []
    for choice in interaction:
        if local_name(choice) != "simpleChoice":
            continue
        option_id = choice.get("identifier", "")
        problem = id_problem(source.where, "simpleChoice identifier", option_id)
        if option_id and problem is not None:
            source.report.error(problem)
            return None
        if not option_id or any(o.option_id == option_id for o in options):
            source.report.error(
                f"{source.where}: simpleChoice identifier {option_id!r} is empty or repeated; "
                "every choice needs its own identifier"
            )
            return None
        fixed = choice.get("fixed", "false").strip().lower() == "true"
        options.append(Option(option_id, writer.html(choice, f"option {option_id}"), fixed))
    if len(options) < 2:
        source.report.error(
            f"{source.where}: choiceInteraction has {len(options)} choice(s); needs 2 or more"
        )
        return None
    return tuple(options)


def _choice_key(source: ItemSource, response: Response, ids: set[str]) -> tuple[str, ...] | None:
    key = response.correct
    mapping = response.mapping
    if not key and mapping is not None:
        positive = [e for e in mapping.entries if e.value > 0]
        if response.cardinality == "single" and positive:
            positive = [max(positive, key=lambda e: e.value)]
        key = tuple(e.key for e in positive)
        if key:
            source.report.warn(
                f"{source.where}: key: no correctResponse, so the key was taken from the "
                f"mapping ({', '.join(key)}); check it in the YAML"
            )
    if not key:
        source.report.error(
            f"{source.where}: no correctResponse (and no positive mapping): the key is missing"
        )
        return None
    unknown = [k for k in key if k not in ids]
    if unknown:
        source.report.error(
            f"{source.where}: correctResponse names {', '.join(unknown)}, which is not a choice"
        )
        return None
    if response.cardinality == "single" and len(key) != 1:
        source.report.error(f"{source.where}: single-choice correctResponse has {len(key)} values")
        return None
    return key


def _check_choice_counts(
    source: ItemSource, interaction: Element, keys: int, options: int, single: bool
) -> None:
    max_choices = int_attribute(interaction, "maxChoices", 1, source.where, source.report)
    min_choices = int_attribute(interaction, "minChoices", 0, source.where, source.report)
    if not single and 0 < max_choices < keys:
        source.report.error(
            f"{source.where}: maxChoices={max_choices} but the key has {keys} options; "
            "nobody could give the right answer"
        )
    elif not single and 0 < max_choices < options:
        source.report.warn(
            f"{source.where}: options: maxChoices={max_choices} is not enforced here (a "
            "candidate may choose more); say the number in the stem"
        )
    if min_choices > 1:
        source.report.warn(
            f"{source.where}: options: minChoices={min_choices} is not enforced here (a "
            "candidate may choose fewer); say the number in the stem"
        )


# --- fill in the blank ----------------------------------------------------------------------


def _fill_blank_item(source: ItemSource, writer: BodyWriter, body: Element) -> Item | None:
    count = len(source.interactions)
    numbers = {id(e): n for n, e in enumerate(source.interactions, start=1)}

    def marker(element: Element) -> str:
        # A visible blank in the text; numbered when the item has several.
        return "____" if count == 1 else f"____({numbers[id(element)]})"

    writer.interactions = {"textEntryInteraction": marker}
    stem = _stem(source, writer, body)
    blanks: list[Blank] = []
    best_total = 0.0
    for interaction in source.interactions:
        response = _response(source, interaction)
        blank = _blank(source, response, interaction) if response is not None else None
        if blank is None:
            return None
        blanks.append(blank[0])
        best_total += blank[1]
    if len({b.blank_id for b in blanks}) != len(blanks):
        source.report.error(f"{source.where}: two textEntryInteractions share one response")
        return None
    if source.processing not in ("match_correct", "map_response", "none"):
        source.report.warn(
            f"{source.where}: blanks: responseProcessing ({source.processing}) is not "
            "interpreted; each blank scores its accepted answers: check them in the YAML"
        )
    uses_mapping = source.processing != "match_correct" and best_total > 0
    return Item(
        item_id=source.item_id,
        type="fill_blank",
        stem=stem,
        points=points_for(source, best_total if uses_mapping else None),
        blanks=tuple(blanks),
    )


def _blank(
    source: ItemSource, response: Response, interaction: Element
) -> tuple[Blank, float] | None:
    """The blank of one textEntryInteraction and the most its mapping awards."""
    where = f"{source.where}: response {response.identifier}"
    problem = id_problem(source.where, "response identifier (the blank's id)", response.identifier)
    if problem is not None:
        source.report.error(problem)
        return None
    if response.cardinality != "single":
        source.report.error(
            f"{where}: cardinality {response.cardinality} is not supported for a blank"
        )
        return None
    accepted = list(response.correct)
    # match_correct compares with correctResponse only; the mapping plays no part.
    mapped = response.mapping is not None and source.processing != "match_correct"
    entries = response.mapping.entries if response.mapping is not None and mapped else ()
    best = max((e.value for e in entries), default=0.0)
    for entry in entries:
        if entry.value >= best - _EPSILON and entry.value > 0 and entry.key not in accepted:
            accepted.append(entry.key)
        elif 0 < entry.value < best - _EPSILON and entry.key not in accepted:
            source.report.warn(
                f"{where}: the answer {entry.key!r} earned {entry.value:g} of {best:g} in QTI; "
                "a blank here is right or wrong, so it was left out (add it to accepted "
                "if it deserves full marks)"
            )
    if mapped and response.mapping is not None and response.mapping.default > 0:
        source.report.warn(
            f"{where}: accepted: the mapping's defaultValue {response.mapping.default:g} gives "
            "any other answer marks in QTI; here any other answer scores 0: add the answers "
            "that deserve marks to accepted"
        )
    if not accepted:
        source.report.error(f"{where}: no correctResponse or positive mapEntry: the key is missing")
        return None
    if response.base_type in ("integer", "float"):
        source.report.warn(
            f"{where}: accepted: numeric answers are compared as text here ('3.0' is not "
            "'3'); list every form that deserves the marks in accepted"
        )
    for name, what in (
        ("patternMask", "the answer is not checked against the pattern"),
        ("placeholderText", "the blank shows no placeholder; put the hint in the stem"),
    ):
        if interaction.get(name):
            source.report.warn(f"{where}: {name}={interaction.get(name)!r} dropped: {what}")
    return Blank(
        response.identifier, tuple(accepted), _normalisation(source, where, entries, accepted)
    ), best


def _normalisation(
    source: ItemSource, where: str, entries: tuple[MapEntry, ...], accepted: list[str]
) -> Normalisation:
    """Case-sensitive unless every mapEntry of an accepted answer says caseSensitive=false."""
    flags = {e.case_sensitive for e in entries if e.key in accepted}
    if len(flags) > 1:
        source.report.warn(
            f"{where}: normalise: mapEntries mix caseSensitive, so the blank is case-sensitive; "
            "add the other spellings to accepted if they deserve the marks"
        )
    return Normalisation(case_sensitive=flags != {False})


# --- essay ----------------------------------------------------------------------------------


def _essay_item(source: ItemSource, writer: BodyWriter, body: Element) -> Item | None:
    interaction = source.interactions[0]
    writer.interactions = {"extendedTextInteraction": lambda el: _prompt_html(writer, el)}
    stem = _stem(source, writer, body)
    where = source.where
    max_length = _essay_length(source, interaction)
    if int_attribute(interaction, "maxStrings", 1, where, source.report) > 1:
        source.report.warn(
            f"{where}: maxStrings: {interaction.get('maxStrings')} separate answers become one "
            "text here; say in the stem how the candidate should separate them"
        )
    if int_attribute(interaction, "minStrings", 0, where, source.report) > 0:
        source.report.warn(
            f"{where}: minStrings: an answer is not required here (a candidate may leave "
            "any item blank); nothing to do unless the exam's rules say otherwise"
        )
    for name, what in (
        (
            "patternMask",
            "the answer is not checked against the pattern; if it limited the length, set "
            "max_length in the YAML",
        ),
        ("placeholderText", "the answer box shows no placeholder; put the hint in the stem"),
    ):
        if interaction.get(name):
            source.report.warn(f"{where}: {name}={interaction.get(name)!r} dropped: {what}")
    if interaction.get("format", "plain") not in ("plain", "preFormatted"):
        source.report.warn(
            f"{where}: format={interaction.get('format')!r}: the answer is plain text here "
            "(no formatting); say so in the stem if candidates expect a rich-text editor"
        )
    response = source.responses.get(interaction.get("responseIdentifier", ""))
    if response is not None and response.correct:
        source.report.warn(
            f"{where}: correctResponse (a model answer) dropped: essays are marked by markers; "
            "give them the model answer with the marking guide"
        )
    if source.processing != "none":
        source.report.warn(
            f"{where}: responseProcessing ({source.processing}) dropped: essays are marked by "
            "markers, not scored automatically"
        )
    if source.max_score is None:
        source.report.warn(
            f"{where}: points: no MAXSCORE, so the essay is worth 1 point; set its points "
            "in the YAML"
        )
    return Item(
        item_id=source.item_id,
        type="essay",
        stem=stem,
        points=points_for(source, None),
        max_length=max_length,
    )


def _essay_length(source: ItemSource, interaction: Element) -> int:
    """`max_length` for an essay: ESSAY_LENGTH_FACTOR x expectedLength, else 0 (no limit).

    QTI's expectedLength is a hint about the answer's size ("about 400 characters"), not a
    limit: authors often mean "at least". Taking it as the limit would cut off the very
    candidates who write what was asked, so the limit is generous, and the warning names
    both figures so the author can set the exam's own rule."""
    expected = interaction.get("expectedLength", "").strip()
    if not expected:
        return 0
    if not expected.isdigit() or int(expected) == 0:
        source.report.warn(
            f"{source.where}: max_length: expectedLength={expected!r} is not a positive whole "
            "number; the answer has no length limit (max_length 0): set one in the YAML if "
            "the exam has one"
        )
        return 0
    max_length = int(expected) * ESSAY_LENGTH_FACTOR
    source.report.warn(
        f"{source.where}: max_length: QTI expectedLength {expected} is a size hint, not a limit; "
        f"max_length set to {max_length} ({ESSAY_LENGTH_FACTOR} x {expected}) so that no answer "
        "of the expected size is cut off: set the exam's own limit in the YAML (0 = no limit)"
    )
    return max_length
