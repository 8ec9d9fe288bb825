"""The demo's people: 30 fake candidates with valid GB 11643 ID numbers, four venue staff
and one central operator.

Everything here is made up and deterministic (the same ticket always gets the same name and
ID number), so the README can show a sample login. The ID numbers pass the GB 11643 check
digit and carry a real birth date, as the roster import demands, but belong to nobody: the
region code 110101 plus a birth date in 1990-1999 plus a sequence number.

Staff passwords are random per demo and printed once (and kept in DIR/logins.txt, mode 0600),
because the demo's servers may be reachable from the LAN with `--host 0.0.0.0`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, timedelta

from server.venue.roster import Candidate, gb11643_check_digit

CANDIDATE_COUNT = 30
SUBJECT = "27"  # the sample paper's subject code
REGION = "110101"  # a real region code prefix; the rest of each number is invented
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
GIVEN = ("伟", "芳", "娜", "敏", "静", "磊", "洋", "艳", "勇", "杰", "娟", "涛", "明", "超", "霞")


@dataclass(frozen=True)
class StaffMember:
    login: str
    name: str
    role: str  # one of server.venue.staff.ROLES (server.central.storage.STAFF_ROLES centrally)
    password: str
    holder: int | None  # the share card this person holds (1-based), or None


def ticket(n: int) -> str:
    """The demo's ticket number of candidate `n` (1-based): subject, venue, room-like digits."""
    return f"27DEMO{n:04d}"


def id_number(n: int) -> str:
    """A valid, invented 18-character resident ID number for candidate `n`."""
    born = date(1990, 1, 1) + timedelta(days=(n * 113) % 3650)
    first17 = f"{REGION}{born:%Y%m%d}{n % 1000:03d}"
    return first17 + gb11643_check_digit(first17)


def name(n: int) -> str:
    """A plausible two- or three-character Chinese name for candidate `n`."""
    surname = SURNAMES[n % len(SURNAMES)]
    given = GIVEN[(n * 7) % len(GIVEN)]
    if n % 3:
        given += GIVEN[(n * 11 + 3) % len(GIVEN)]
    return surname + given


def demo_candidates(count: int = CANDIDATE_COUNT) -> list[Candidate]:
    """The demo roster, as the roster import would build it from a CSV."""
    return [
        Candidate(
            ticket=ticket(n),
            name=name(n),
            id_number=id_number(n),
            subject=SUBJECT,
            row_no=n + 1,
        )
        for n in range(1, count + 1)
    ]


def demo_staff() -> list[StaffMember]:
    """The venue's four accounts with fresh random passwords; three of them hold shares."""
    return [
        StaffMember("admin", "演示 系统管理员 / Demo administrator", "system_administrator",
                    _password(), None),
        StaffMember("chief", "演示 主考 / Demo chief examiner", "chief_examiner", _password(), 1),
        StaffMember("inv1", "演示 监考一 / Demo invigilator 1", "invigilator", _password(), 2),
        StaffMember("inv2", "演示 监考二 / Demo invigilator 2", "invigilator", _password(), 3),
    ]  # fmt: skip


def demo_central_staff() -> list[StaffMember]:
    """The centre's console account (status page, reports), with a fresh random password."""
    return [StaffMember("operator", "演示 中心操作员 / Demo central operator", "operator",
                        _password(), None)]  # fmt: skip


def _password() -> str:
    """Four groups of four letters and digits: easy to type, about 80 bits."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(4))
