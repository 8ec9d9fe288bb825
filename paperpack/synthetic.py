"""Large, realistic synthetic papers for tests, `paperpack prove` and benchmarks.

`synthetic_paper(n_items=100, seed=0)` gives a deterministic paper shaped like a Chinese
qualification exam: single choice (about 40%), multiple choice (20%, half of them with
partial credit), true/false (15%), fill-in (15%) and short essays (10%), bilingual stems,
some "none of the above" options fixed in last place, and an unshuffled essay section.
The same arguments always give the same paper. `random.Random` is fine here: this is
made-up content, never a secret.
"""

from __future__ import annotations

import random

from paperpack.model import (
    TRUE_FALSE_OPTION_IDS,
    Blank,
    Item,
    Normalisation,
    Option,
    Paper,
    Section,
)

_TOPICS = (
    ("建设工程合同", "construction contracts"),
    ("工程项目管理", "project management"),
    ("安全生产责任", "safety responsibility"),
    ("招标投标程序", "tendering procedure"),
    ("质量验收标准", "quality acceptance"),
    ("成本控制方法", "cost control"),
    ("进度计划编制", "scheduling"),
    ("环境保护要求", "environmental protection"),
)
_OPTION_IDS = ("a", "b", "c", "d", "e", "f")
# (type, share of the items, section title)
_MIX = (
    ("single_choice", 0.40, "一、单项选择题 Single choice"),
    ("multiple_choice", 0.20, "二、多项选择题 Multiple choice"),
    ("true_false", 0.15, "三、判断题 True or false"),
    ("fill_blank", 0.15, "四、填空题 Fill in the blanks"),
    ("essay", 0.10, "五、简答题 Short answer"),
)


def _counts(n_items: int) -> list[int]:
    counts = [int(n_items * share) for _, share, _ in _MIX]
    counts[0] += n_items - sum(counts)  # the remainder goes to single choice
    return counts


def _stem(rng: random.Random, number: int) -> str:
    zh, en = rng.choice(_TOPICS)
    return (
        f"<p>第{number}题：关于{zh}，下列说法符合规定的是（　）。</p>"
        f"<p>Question {number}: which statement about {en} is correct?</p>"
    )


def _options(rng: random.Random, count: int, fixed_last: bool) -> tuple[Option, ...]:
    options = [
        Option(
            oid, f"<p>选项 {oid.upper()}：{rng.choice(_TOPICS)[0]}的第{rng.randint(1, 99)}条</p>"
        )
        for oid in _OPTION_IDS[:count]
    ]
    if fixed_last:
        options[-1] = Option(options[-1].option_id, "<p>以上都不对 / None of the above</p>", True)
    return tuple(options)


def _choice_item(rng: random.Random, item_id: str, number: int, kind: str) -> Item:
    if kind == "true_false":
        options: tuple[Option, ...] = (
            Option("true", "正确 / True", True),
            Option("false", "错误 / False", True),
        )
        key: tuple[str, ...] = (rng.choice(TRUE_FALSE_OPTION_IDS),)
        return Item(item_id, "true_false", _stem(rng, number), 1.0, options, key, False)
    fixed_last = rng.random() < 0.15
    if kind == "single_choice":
        options = _options(rng, 4, fixed_last)
        key = (rng.choice(options[:3]).option_id,)
        return Item(item_id, "single_choice", _stem(rng, number), 1.0, options, key)
    options = _options(rng, 5, fixed_last)
    movable = [o.option_id for o in options if not o.fixed]
    key = tuple(sorted(rng.sample(movable, rng.randint(2, min(4, len(movable))))))
    partial = rng.random() < 0.5
    return Item(
        item_id,
        "multiple_choice",
        _stem(rng, number),
        2.0,
        options,
        key,
        scoring="partial" if partial else "all_or_nothing",
        partial_points=0.5 if partial else 0.0,
    )


def _fill_item(rng: random.Random, item_id: str, number: int) -> Item:
    blanks = tuple(
        Blank(
            f"{item_id}-b{k + 1}",
            (rng.choice(("三十", "30", "HRB400", "C30", "7 days")), "thirty"),
            Normalisation(),
        )
        for k in range(rng.randint(1, 3))
    )
    stem = f"<p>第{number}题：混凝土标准养护时间不少于____天，钢筋牌号为____。</p>"
    return Item(item_id, "fill_blank", stem, float(len(blanks)), blanks=blanks)


def _essay_item(rng: random.Random, item_id: str, number: int) -> Item:
    zh, en = rng.choice(_TOPICS)
    stem = f"<p>第{number}题：简述{zh}的主要内容。Outline the main points of {en}.</p>"
    return Item(item_id, "essay", stem, 10.0, max_length=2000)


def _item(rng: random.Random, kind: str, item_id: str, number: int) -> Item:
    if kind == "fill_blank":
        return _fill_item(rng, item_id, number)
    if kind == "essay":
        return _essay_item(rng, item_id, number)
    return _choice_item(rng, item_id, number, kind)


def synthetic_paper(n_items: int = 100, seed: int = 0, forms: tuple[str, ...] = ()) -> Paper:
    """A deterministic realistic paper of `n_items` items (>= 1) of every type."""
    if n_items < 1:
        raise ValueError("a synthetic paper needs at least one item")
    rng = random.Random(seed)
    sections: list[Section] = []
    number = 0
    for (kind, _, title), count in zip(_MIX, _counts(n_items), strict=True):
        items = []
        for _ in range(count):
            number += 1
            items.append(_item(rng, kind, f"q{number:04d}", number))
        if items:
            sections.append(
                Section(
                    section_id=f"s{len(sections) + 1}",
                    title=title,
                    items=tuple(items),
                    instructions=f"<p>本部分共{count}题。This part has {count} items.</p>",
                    shuffle=kind != "essay",
                )
            )
    return Paper(
        paper_id=f"SYN-{n_items}-{seed}",
        subject_code="9001",
        subject_name="建设工程管理实务 (synthetic)",
        title=f"合成试卷 Synthetic paper ({n_items} items, seed {seed})",
        language="zh-CN",
        duration_minutes=150,
        sections=tuple(sections),
        forms=forms,
        pass_mark=None,
    )
