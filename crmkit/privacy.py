"""Masking and hashing of personal data, used by every output path.

Phones, names and open ids never leave crmkit unmasked: reports, apps,
exports and at-risk lists pass their frames through :func:`mask_frame`
(for display) or :func:`hash_frame` (for joinable exports).
"""
from __future__ import annotations

import hashlib
import hmac
import os
import re
import warnings

import pandas as pd

#: Column names treated as personal data wherever they appear in an output frame.
PII_PHONE = ("phone", "mobile", "手机号")
PII_NAME = ("name", "member_name", "nickname", "姓名")
PII_ID = ("open_id", "openid", "source_id", "union_id")

_DIGITS = re.compile(r"\D")


def mask_phone(phone) -> str | None:
    """``13812345678`` → ``138****5678``; keeps the first 3 and last 4 digits."""
    if phone is None or (isinstance(phone, float) and phone != phone):
        return None
    d = _DIGITS.sub("", str(phone))
    if len(d) > 11 and d.startswith("86"):
        d = d[2:]
    if len(d) < 7:
        return "*" * len(d)
    return f"{d[:3]}{'*' * (len(d) - 7)}{d[-4:]}"


def mask_name(name) -> str | None:
    """``张三`` → ``张*``, ``欧阳娜娜`` → ``欧***``, ``Alice`` → ``A****``, ``王`` → ``*``."""
    if name is None or (isinstance(name, float) and name != name):
        return None
    s = str(name).strip()
    if not s:
        return s
    if len(s) == 1:  # a one-character name would otherwise pass through whole
        return "*"
    return s[0] + "*" * (len(s) - 1)


def mask_id(value) -> str | None:
    """``oUpF8uMuAJO_M2pxb1Q9zNjWeS6o`` → ``oUpF****eS6o``."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    s = str(value)
    if len(s) <= 8:
        return s[:1] + "*" * (len(s) - 1)
    return f"{s[:4]}****{s[-4:]}"


def salt() -> bytes:
    """The hashing salt: ``$CRMKIT_SALT``, or a fixed project default.

    Set ``CRMKIT_SALT`` per deployment so that hashes cannot be joined across
    companies; the default keeps reports reproducible on a laptop.
    """
    return os.environ.get("CRMKIT_SALT", "crmkit-default-salt").encode()


def hash_value(value, *, key: bytes | None = None) -> str | None:
    """Salted HMAC-SHA256 of a normalized value, 16 hex characters."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    s = str(value).strip()
    return hmac.new(key or salt(), s.encode(), hashlib.sha256).hexdigest()[:16]


def _pii_kind(col: str) -> str | None:
    c = col.lower()
    if c in PII_PHONE:
        return "phone"
    if c in PII_NAME:
        return "name"
    if c in PII_ID:
        return "id"
    return None


def mask_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` with every PII column masked for display."""
    out = df.copy()
    fn = {"phone": mask_phone, "name": mask_name, "id": mask_id}
    for col in out.columns:
        kind = _pii_kind(str(col))
        if kind:
            out[col] = out[col].map(fn[kind]).astype(object)
    return out


class PrivacyWarning(UserWarning):
    """Personal data is protected less than it should be (e.g. hashed with the public default salt)."""


def hash_frame(df: pd.DataFrame, *, key: bytes | None = None) -> pd.DataFrame:
    """A copy of ``df`` with every PII column replaced by its salted hash (for joinable exports).

    Without ``key`` or ``$CRMKIT_SALT`` the salt is crmkit's public default: mainland
    mobile numbers are few enough (about 10^10) to recover by trying them all, so
    that warns (:class:`PrivacyWarning`).
    """
    if key is None and "CRMKIT_SALT" not in os.environ and any(_pii_kind(str(c)) for c in df.columns):
        warnings.warn("hashing personal data with crmkit's public default salt, which anyone can reverse "
                      "by trying every phone number; set CRMKIT_SALT to a secret of your own.",
                      PrivacyWarning, stacklevel=2)
    out = df.copy()
    for col in out.columns:
        if _pii_kind(str(col)):
            out[col] = out[col].map(lambda v: hash_value(v, key=key)).astype(object)
    return out


PHONE_RE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")

#: Digits (ASCII and full-width) and the separators people type inside a phone number (spaces, dashes, dots,
#: brackets, in ASCII and full-width): a run of them is where a phone number may hide in free text.
_DIGIT = "0-9\uff10-\uff19"
_SEPARATOR = "\\s\\-.\u2010-\u2015\u2212\uff0d()\uff08\uff09\u3000"
_RUN = re.compile(f"[{_DIGIT}](?:[{_SEPARATOR}]*[{_DIGIT}])*")
_FULL_WIDTH = str.maketrans("\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19", "0123456789")


def mask_phones_in_text(text):
    """``text`` with the middle four digits of every mainland mobile number in it starred, whatever its format.

    A number may be written ``13812345678``, ``138 1234 5678``, ``+86 138-1234-5678``, ``(86)138.1234.5678``
    or in full-width digits: in every run of digits and separators, each 11 digits in a row (separators aside)
    that read ``1[3-9]…`` have their 4th to 7th digit replaced by ``*`` (``+86 138-****-5678``), separators
    kept. A longer run (an order number holding such digits) is masked too: where text may hold personal
    data (a quarantined raw line), hiding too much is the safe side. None stays None.
    """
    if text is None or (isinstance(text, float) and text != text):
        return None

    def one(m: re.Match) -> str:
        run = m.group(0)
        where = [i for i, c in enumerate(run) if c.translate(_FULL_WIDTH).isdigit()]
        digits = "".join(run[i].translate(_FULL_WIDTH) for i in where)
        hide = set()
        for start in range(len(digits) - 10):
            if digits[start] == "1" and digits[start + 1] in "3456789":
                hide.update(where[start + 3: start + 7])
        return "".join("*" if i in hide else c for i, c in enumerate(run))

    return _RUN.sub(one, str(text))


def find_raw_phones(text: str) -> list[str]:
    """Unmasked mainland mobile numbers in ``text`` (used to check reports)."""
    return PHONE_RE.findall(text)
