"""The violation rules (art. 32): one table of the kinds a venue records and the handlings the
chief examiner proposes and the centre determines, in the regulation's words, Chinese and
English (专业技术人员资格考试违纪违规行为处理规定).

The chain (issue 14, point 1): an invigilator records a violation with its kind; the chief
examiner confirms it and proposes a handling under their own login (both audited at the
venue); the export carries kind, handling and who confirmed it; at the centre an operator
determines it (confirms a handling as a `cancel` change citing the violation, or dismisses it
with a reason as a `dismiss` change) and a second person approves. Only a determined handling
changes a score. A serious kind holds the candidate's records for 5 years (art. 23(7)).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ViolationKind:
    kind: str
    zh: str
    en: str
    serious: bool  # 严重违纪违规: records kept 5 years (art. 23(7))


@dataclass(frozen=True)
class Handling:
    handling: str
    zh: str
    en: str
    cancels: bool  # the determined handling cancels the candidate's score of this session


_S, _N = True, False  # serious or not

KINDS: dict[str, ViolationKind] = {
    k.kind: k
    for k in (
        ViolationKind("unauthorised_material", "携带规定以外的物品",
                      "unauthorised material", _N),
        ViolationKind("leaving_seat", "未经允许擅自离开座位",
                      "leaving the seat without leave", _N),
        ViolationKind("disruption", "扰乱考场秩序",
                      "disrupting the exam room", _N),
        ViolationKind("copying", "抄袭、协助他人抄袭",
                      "copying or helping to copy", _S),
        ViolationKind("communication", "使用通讯工具或交换信息",
                      "communication devices or passing information", _S),
        ViolationKind("device_misuse", "故意损坏考试设备或篡改系统",
                      "damaging exam equipment or tampering with the system", _S),
        ViolationKind("impersonation", "代替他人或让他人代替参加考试",
                      "sitting for another or letting another sit", _S),
        ViolationKind("other", "其他违纪违规行为",
                      "other violation", _N),
    )
}  # fmt: skip

HANDLINGS: dict[str, Handling] = {
    h.handling: h
    for h in (
        Handling("cancel_subject", "当次该科目考试成绩无效",
                 "this subject's score is void for this sitting", True),
        Handling("cancel_all", "当次全部科目考试成绩无效",
                 "every subject's score is void for this sitting", True),
        Handling("record_only", "记录在案，不影响成绩",
                 "recorded; no effect on the score", False),
    )
}  # fmt: skip

SERIOUS_KINDS = frozenset(k.kind for k in KINDS.values() if k.serious)
CANCELLING_HANDLINGS = frozenset(h.handling for h in HANDLINGS.values() if h.cancels)


def is_serious(kind: str) -> bool:
    return kind in SERIOUS_KINDS
