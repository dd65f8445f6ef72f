"""File and class names from users: shown on one honest line, stored under portable names."""

from __future__ import annotations

import os
import unicodedata

import pytest

from catdog.data.names import look_alike_letters, portable_name, shown


@pytest.mark.parametrize(
    "name, expected",
    [
        ("cat.1.jpg", "cat.1.jpg"),
        ("Müller 猫 -rf.jpg", "Müller 猫 -rf.jpg"),  # accents, other scripts, dashes: as they are
        ("a\nb\tc\r.jpg", "a\\nb\\tc\\r.jpg"),
        ("\x1b[2J\x1b[31mred.jpg", "\\x1b[2J\\x1b[31mred.jpg"),  # terminal escapes
        ("photo\u202egpj.png", "photo\\u202egpj.png"),  # shows as "photopng.jpg" otherwise
        ("zero\u200bwidth.jpg", "zero\\u200bwidth.jpg"),
        (os.fsdecode(b"caf\xe9-\xff.jpg"), "caf\\xe9-\\xff.jpg"),  # bytes that are not UTF-8
    ],
)
def test_shown_keeps_a_name_on_one_line_hiding_nothing(name: str, expected: str) -> None:
    assert shown(name) == expected
    assert shown(expected) == expected  # what is shown is itself shown as it is
    expected.encode("utf-8")  # printable to any UTF-8 terminal


@pytest.mark.parametrize(
    "stem, suffix, expected",
    [
        ("cat.1", ".jpg", "cat.1.jpg"),
        (unicodedata.normalize("NFD", "Müller"), ".jpg", "Müller.jpg"),  # composed (NFC)
        ("a\nb", ".jpg", "a_b.jpg"),
        (os.fsdecode(b"caf\xe9"), ".jpg", "caf_.jpg"),
        ("photo\u202egpj", ".jpg", "photo_gpj.jpg"),
        ('<b>*x*: "y"?|', ".jpg", "_b__x__ _y___.jpg"),  # not allowed on Windows
        ("trailing. .", ".jpg", "trailing.jpg"),  # Windows drops them
        ("CON", ".jpg", "CON_.jpg"),
        ("nul", "-2.jpg", "nul_-2.jpg"),
        ("aux.tar", ".jpg", "aux_.tar.jpg"),  # AUX.anything is the device too
        ("COM1", ".jpg", "COM1_.jpg"),
        ("CONSOLE", ".jpg", "CONSOLE.jpg"),  # not reserved
        ("", ".jpg", "image.jpg"),
    ],
)
def test_portable_name(stem: str, suffix: str, expected: str) -> None:
    assert portable_name(stem, suffix) == expected


def test_portable_name_fits_the_limit_in_bytes_without_splitting_a_letter() -> None:
    assert portable_name("y" * 251, "-2.jpg") == "y" * 249 + "-2.jpg"
    long = portable_name("é" * 200, "-12.jpg")
    assert len(long.encode()) <= 255 and long == "é" * 124 + "-12.jpg"


def test_look_alike_letters_in_a_latin_name() -> None:
    assert look_alike_letters("c\u0430ts") == ["\u0430 is U+0430 CYRILLIC SMALL LETTER A"]
    assert look_alike_letters("d\u03bfgs") == ["\u03bf is U+03BF GREEK SMALL LETTER OMICRON"]
    assert look_alike_letters("cats") == []
    assert look_alike_letters("кошки") == []  # all Cyrillic: a name, not a disguise
    assert look_alike_letters("cat_猫") == []  # Latin and Han look nothing alike
