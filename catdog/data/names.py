"""File and class names from users, made safe to show and to store.

A name can hold anything a file system allows: newlines and terminal escapes, right-to-left
overrides that make ``photo‮gpj.exe`` read as ``photoexe.jpg``, bytes that are not UTF-8
(Python keeps them as lone surrogates), letters from another script that look Latin, the same
letter in composed (NFC) or decomposed (NFD) form, Windows' reserved device names. Every
message that names a file goes through :func:`shown`, so it stays one honest line; every file
name the importer writes goes through :func:`portable_name`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from catdog.data.datasets import DatasetError

# Invisible characters that reorder or hide the text around them (Unicode's bidirectional
# formatting characters, zero-width ones and the byte order mark).
_HIDDEN = frozenset(
    "\u061c\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
    "\u2060\u2066\u2067\u2068\u2069\ufeff"
)
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Names Windows reserves for devices, whatever the extension (CON.jpg opens the console).
_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{port}{n}" for port in ("COM", "LPT") for n in [*"123456789", "¹", "²", "³"]}
)
# Characters Windows does not allow in a file name.
_NOT_ON_WINDOWS = frozenset('<>:"/\\|?*')
# Scripts whose letters include look-alikes of Latin ones (а/a, е/e, о/o, р/p, ν/v …).
_LOOK_ALIKE_SCRIPTS = ("CYRILLIC", "GREEK", "ARMENIAN", "CHEROKEE")
# A class name is a folder name: at most this long, none of these characters.
MAX_CLASS_NAME = 64
_FORBIDDEN_IN_CLASS = frozenset('/\\<>:"|?*')


def _escape(char: str) -> str | None:
    """How ``char`` is shown if it cannot be shown as itself, else None."""
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, kept by surrogateescape
        return f"\\x{code - 0xDC00:02x}"
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    if unicodedata.category(char) in ("Cc", "Cs") or char in _HIDDEN:
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return None


def shown(name: str) -> str:
    """``name`` as it can be shown on one line, hiding nothing.

    Control characters (``\\n``, ``\\x1b`` …), invisible reordering characters (``\\u202e``)
    and bytes that are not UTF-8 (``\\xff``) are written as escapes; everything else, accents
    and other scripts included, is kept as it is.
    """
    if name.isprintable() and not any(char in _HIDDEN for char in name):
        return name
    return "".join(_escape(char) or char for char in name)


def look_alike_letters(name: str) -> list[str]:
    """In a name written in Latin letters, the letters from another script that look Latin.

    Returns:
        One description per such letter, e.g. ``"а is U+0430 CYRILLIC SMALL LETTER A"``; empty
        when the name does not mix Latin with Cyrillic, Greek, Armenian or Cherokee letters.
    """
    scripts = {char: unicodedata.name(char, "").split(" ")[0] for char in name if char.isalpha()}
    if "LATIN" not in scripts.values():
        return []
    return [
        f"{char} is U+{ord(char):04X} {unicodedata.name(char)}"
        for char, script in scripts.items()
        if script in _LOOK_ALIKE_SCRIPTS
    ]


def portable_name(stem: str, suffix: str, limit: int = 255) -> str:
    """A file name that every common disk stores and shows as the same name.

    The stem is put in composed form (NFC, as macOS and Windows show it); control, invisible
    and undecodable characters, and those Windows forbids, become ``_``; trailing dots and
    spaces (which Windows drops) go; a reserved device name (``CON``, ``nul``, ``COM1`` …)
    gets a ``_``; and the stem is shortened so that the whole name fits in ``limit`` bytes of
    UTF-8.

    Args:
        stem: the name without its suffix, as found.
        suffix: the suffix to add, e.g. ``".jpg"`` or ``"-2.jpg"``.
        limit: the longest name allowed, in bytes of UTF-8.
    """
    text = unicodedata.normalize("NFC", stem)
    text = "".join(
        "_" if _escape(char) is not None or char in _NOT_ON_WINDOWS else char for char in text
    )
    device, dot, rest = text.partition(".")
    if device.rstrip(" ").upper() in _RESERVED:  # CON.tar is the console too
        text = f"{device}_{dot}{rest}"
    room = limit - len(suffix.encode())
    while len(text.encode()) > room:
        text = text[:-1]
    return (text.rstrip(". ") or "image") + suffix


def check_class_name(name: str) -> str:
    """A class name as it will be stored (stripped, composed NFC form), or why it cannot be.

    Raises:
        DatasetError: empty, too long, a hidden or relative name, or a character a folder name
            cannot hold; the message names it.
    """
    text = unicodedata.normalize("NFC", str(name).strip())
    if not text:
        raise DatasetError("a class needs a name (e.g. cats); type one")
    bad = sorted({c for c in text if c in _FORBIDDEN_IN_CLASS or not c.isprintable()})
    if bad or text.startswith(".") or len(text) > MAX_CLASS_NAME:
        why = (
            f"it holds {', '.join(repr(c) for c in bad)}" if bad
            else "it starts with '.'" if text.startswith(".")
            else f"it is longer than {MAX_CLASS_NAME} characters"
        )  # fmt: skip
        raise DatasetError(
            f"class name {shown(text)!r} cannot be a folder name: {why}; use letters, digits, "
            "spaces, '-' or '_'"
        )
    return text


def check_class_names(names: Sequence[str], *, at_least: int = 2) -> list[str]:
    """Check every class name (:func:`check_class_name`), refusing repeats (compared without
    case: a disk may not tell ``Cats`` from ``cats``) and fewer than ``at_least`` classes.

    Raises:
        DatasetError: the first problem, in one sentence.
    """
    checked = [check_class_name(n) for n in names]
    seen: dict[str, str] = {}
    for name in checked:
        if (other := seen.get(class_key(name))) is not None:
            both = f"{shown(name)!r}" + (f" and {shown(other)!r}" if other != name else "")
            raise DatasetError(f"two classes are called {both}; give each class its own name")
        seen[class_key(name)] = name
    if len(checked) < at_least:
        raise DatasetError(
            f"a classifier needs at least {at_least} classes, got {len(checked)}; add another"
        )
    return checked


def class_key(name: str) -> str:
    """What makes two class names one class to every disk: the composed form (NFC), with
    case ignored (``Cats``, ``cats`` and a decomposed ``cäts`` twin share a key)."""
    return unicodedata.normalize("NFC", name).casefold()


def case_twins(names: list[str]) -> list[tuple[str, str]]:
    """Pairs of names (in NFC) that differ only in case, e.g. ``[("Cats", "cats")]``: on
    macOS' and Windows' disks they are one folder, on Linux' two."""
    first: dict[str, str] = {}
    twins = []
    for name in sorted({unicodedata.normalize("NFC", n) for n in names}):
        seen = first.setdefault(class_key(name), name)
        if seen != name:
            twins.append((seen, name))
    return twins
