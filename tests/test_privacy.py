import warnings

import pandas as pd
import pytest

from crmkit import privacy


def test_mask_phone():
    assert privacy.mask_phone("13812345678") == "138****5678"
    assert privacy.mask_phone("+86 138-1234-5678") == "138****5678"
    assert privacy.mask_phone(None) is None


def test_mask_name():
    assert privacy.mask_name("张三") == "张*"
    assert privacy.mask_name("欧阳娜娜") == "欧***"
    assert privacy.mask_name("王") == "*"  # nothing of a one-character name is shown


def test_hash_is_salted_and_stable():
    a = privacy.hash_value("13812345678", key=b"s1")
    assert a == privacy.hash_value("13812345678", key=b"s1")
    assert a != privacy.hash_value("13812345678", key=b"s2")
    assert len(a) == 16


def test_mask_frame_masks_every_pii_column():
    df = pd.DataFrame({"member_id": ["M1"], "phone": ["13812345678"], "name": ["李四"], "openid": ["oUpF8uMuAJO_M2pxb1Q9"]})
    out = privacy.mask_frame(df)
    assert out.loc[0, "phone"] == "138****5678"
    assert out.loc[0, "name"] == "李*"
    assert out.loc[0, "openid"] == "oUpF****b1Q9"
    assert out.loc[0, "member_id"] == "M1"
    assert privacy.find_raw_phones(out.to_string()) == []


def test_hashing_with_the_public_default_salt_warns(monkeypatch):
    df = pd.DataFrame({"member_id": ["M1"], "phone": ["13812345678"]})
    monkeypatch.delenv("CRMKIT_SALT", raising=False)
    with pytest.warns(privacy.PrivacyWarning, match="CRMKIT_SALT"):
        privacy.hash_frame(df)
    monkeypatch.setenv("CRMKIT_SALT", "a secret of our own")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert privacy.hash_frame(df).loc[0, "phone"] == privacy.hash_value("13812345678", key=b"a secret of our own")


@pytest.mark.parametrize("text, masked", [
    ("tel 13812345678 ok", "tel 138****5678 ok"),
    ("+86 139 0013 9022", "+86 139 **** 9022"),
    ("86-137-0013-7000", "86-137-****-7000"),
    ("（+86）139.0013.9022", "（+86）139.****.9022"),
    ("１３８００１３８０００", "１３８****８０００"),
    ("2024-01-05 13:45:12, ¥13,800.00", "2024-01-05 13:45:12, ¥13,800.00"),  # no phone: as it was
])
def test_phones_in_text_are_masked_in_any_format(text, masked):
    assert privacy.mask_phones_in_text(text) == masked
    digits = "".join(c for c in masked.translate(str.maketrans("０１２３４５６７８９", "0123456789")) if c.isdigit())
    assert privacy.find_raw_phones(digits.replace("86", "", 1) if digits.startswith("86") else digits) == []
