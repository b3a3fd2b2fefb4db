"""Personal numbers in free text, masked however they were typed (domain.access.redact), and house
numbers hidden in text that leaves the cockpit (domain.access.round_address)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.access import _IN_TEXT, _OTHER_DIGIT, redact, round_address

#: The patterns as first written, one alternative after another (each with its own lookbehind): the
#: reference the faster ones in domain.access must agree with, match for match.
_S = "[ \u00a0\u3000\\-\uff0d\u2013\u2014.\uff0e]"
_IN_TEXT_AS_WRITTEN = re.compile(
    rf"(?<![0-9])(?P<mobile>(?:(?:\+|＋)?86{_S}?)?1[3-9][0-9]{_S}?[0-9]{{4}}{_S}?[0-9]{{4}})(?![0-9])"
    rf"|(?<![0-9])(?P<landline>[(（]?0[1-9][0-9]{{1,2}}[)）]?{_S}?[2-9][0-9]{{6,7}})(?![0-9])"
    rf"|(?<![0-9])(?P<resident>[1-9][0-9]{{5}}{_S}?(?:19|20)[0-9]{{2}}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
    rf"{_S}?[0-9]{{3}}[0-9XxＸｘ])(?![0-9A-Za-z])"
)
_OTHER_DIGIT_AS_WRITTEN = re.compile(r"(?![0-9])\d")


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("回拨13912345678", "回拨139****5678"),
        ("138 1234 5678", "138 **** 5678"),
        ("138-1234-5678", "138-****-5678"),
        ("+86 13812345678", "+86 138****5678"),
        ("+86-138-1234-5678", "+86-138-****-5678"),
        ("8613812345678", "86138****5678"),
        ("１３８１２３４５６７８", "１３８****５６７８"),  # full-width digits, kept as typed
        ("座机 0570-8765432", "座机 0570-***5432"),
        ("座机 010-62345678", "座机 010-****5678"),
        ("(0570)8765432", "(0570)***5432"),
        ("（0570）8765432", "（0570）***5432"),
        ("057087654321", "0570****4321"),
        ("身份证 33080219900101123X", "身份证 330802********123X"),
        ("１３８－１２３４－５６７８", "１３８－****－５６７８"),  # a full-width IME: its hyphens too
        ("138\u00a01234\u00a05678", "138\u00a0****\u00a05678"),  # no-break spaces, as pasted
        ("138\u30001234\u30005678", "138\u3000****\u30005678"),
        ("138.1234.5678", "138.****.5678"),
        ("138–1234–5678", "138–****–5678"),
        ("座机 0570－8765432", "座机 0570－***5432"),
        ("３３０８０２１９９００１０１１２３Ｘ", "３３０８０２********１２３Ｘ"),
        ("身份证 330802 19900101 123X", "身份证 330802 ******** 123X"),
    ],
)
def test_every_way_of_typing_a_phone_or_an_id_is_masked(typed, shown):
    assert redact(typed) == shown


@pytest.mark.parametrize(
    "kept",
    [
        "网格 330802001001001",
        "编号 2026112212",
        "2026-11-21 08:00",
        "共 13 人，损失 1500000 元",
        "工单 20261121080000",
        "网格 330802001001001001",  # 18 digits whose middle is no birth date
        "139123456789",  # 12 digits: no mobile number
        "2026.11.21 13.5 万元",
        "经度 118.8761，纬度 28.9712",
    ],
)
def test_other_numbers_are_left_as_they_are(kept):
    assert redact(kept) == kept


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("荷花街道紫荆路88号3幢2单元501室", "荷花街道紫荆路*号*幢*单元*室"),
        ("仙霞路264号门口", "仙霞路*号门口"),
        ("人民路12-3号旁", "人民路*号旁"),
        ("新村１２号", "新村*号"),
        ("路灯坏了，在学校东门", "路灯坏了，在学校东门"),
    ],
)
def test_house_numbers_are_hidden_and_the_road_is_kept(typed, shown):
    assert round_address(typed) == shown


# Text made of numbers as they are typed (mobiles, landlines, resident IDs, other digit runs, with their
# separators) and what stands between them: digits, characters a number starts with, other characters.
_PIECE = st.one_of(
    st.from_regex(rf"(\+|＋)?(86{_S}?)?1[3-9][0-9]{_S}?[0-9]{{4}}{_S}?[0-9]{{4}}", fullmatch=True),
    st.from_regex(rf"[(（]?0[1-9][0-9]{{1,2}}[)）]?{_S}?[2-9][0-9]{{6,7}}", fullmatch=True),
    st.from_regex(
        rf"[1-9][0-9]{{5}}{_S}?(19|20)[0-9]{{2}}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01]){_S}?[0-9]{{3}}[0-9XxＸｘ]",
        fullmatch=True,
    ),
    st.text(alphabet="0123456789１３８٣ -+＋()（）XxＸ电a.－\u00a0", max_size=6),
)
_TYPED = st.lists(_PIECE, max_size=5).map("".join)


@settings(max_examples=1000, deadline=None)
@given(_TYPED)
def test_the_fast_patterns_find_what_the_patterns_as_written_find(text):
    def spans(pattern):
        return [(m.span(), m.lastgroup) for m in pattern.finditer(text)]

    assert spans(_IN_TEXT) == spans(_IN_TEXT_AS_WRITTEN)
    assert spans(_OTHER_DIGIT) == spans(_OTHER_DIGIT_AS_WRITTEN)
