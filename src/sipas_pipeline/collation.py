"""Vietnamese alphabetical order (thứ tự chữ cái tiếng Việt) as a plain sort key that byte order respects.

Byte order puts "Bình Định" before "Bạc Liêu" (ạ sorts after i); the Vietnamese alphabet orders letters
a ă â b c d đ e ê g h i k l m n o ô ơ p q r s t u ư v x y, and compares tones (không, huyền, hỏi, ngã, sắc,
nặng) only when the letters are equal. `sort_key_vi` encodes exactly that into an ASCII string, so a DuckDB
`ORDER BY` on the stored key (units.name_sort) and Python's `sorted(key=sort_key_vi)` give the same order.
"""

from __future__ import annotations

import unicodedata

ALPHABET = ["a", "ă", "â", "b", "c", "d", "đ", "e", "ê", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "ô", "ơ",
            "p", "q", "r", "s", "t", "u", "ư", "v", "w", "x", "y", "z"]
RANK = {letter: i for i, letter in enumerate(ALPHABET)}
# combining marks that make a letter (breve, circumflex, horn) versus the tone marks, in the traditional order
LETTER_MARKS = {"\u0306", "\u0302", "\u031b"}
TONES = {"\u0300": 1, "\u0309": 2, "\u0303": 3, "\u0301": 4, "\u0323": 5}  # huyền, hỏi, ngã, sắc, nặng


def sort_key_vi(text: str) -> str:
    """An ASCII key whose byte order is Vietnamese alphabetical order: letters first, then tones, then the
    text itself (a total order). Characters outside the alphabet (digits, spaces, '-') keep their code order
    before letters."""
    letters, tones = [], []
    for ch in unicodedata.normalize("NFC", text).lower():
        parts = unicodedata.normalize("NFD", ch)
        base = "".join(c for c in parts if c not in TONES)
        tone = next((TONES[c] for c in parts if c in TONES), 0)
        letter = unicodedata.normalize("NFC", base)
        if letter in RANK:
            letters.append(chr(0x41 + RANK[letter]))  # A.. for letters: after digits and punctuation
        elif letter.isspace():
            letters.append("!")  # a space sorts before any letter; the key's separator (" ") before a space
        else:
            letters.append(letter if letter.isascii() and "!" < letter < "A" else "~")
        tones.append(str(tone))
    return "".join(letters) + " " + "".join(tones)
