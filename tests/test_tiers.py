"""Tiers by rules that are data: default thresholds, custom rules, validation, migration."""
import pytest

from crmkit import tiers
from crmkit.errors import CrmkitError


@pytest.fixture
def tier_store(con):
    con.execute("INSERT INTO members (member_id, join_date) VALUES ('P', '2023-01-01'), ('NEW', '2024-06-01')")
    con.execute("""INSERT INTO transactions (member_id, order_id, line_no, order_time, amount, txn_type) VALUES
        ('S', 'o1', 1, '2024-03-01 10:00', 2000, 'sale'),      -- exactly the Silver threshold
        ('G', 'o2', 1, '2023-07-01 10:00', 5000, 'sale'),      -- 365 days before as_of: outside the window
        ('G', 'o3', 1, '2023-07-02 10:00', 9000, 'sale'),      -- 364 days before: inside
        ('D', 'o4', 1, '2024-01-10 10:00', 25000, 'sale'),
        ('D', 'o4', 1, '2024-01-20 10:00', -6000, 'return'),   -- returns are subtracted: 19,000
        ('D', 'o5', 1, '2024-06-30 21:00', 1500, 'sale'),      -- on as_of: counts; 20,500
        ('R', 'o6', 1, '2024-02-01 10:00', 1999.99, 'sale'),
        ('X', 'o7', 1, '2024-07-01 10:00', 50000, 'sale')      -- after as_of: not yet a member
    """)
    return con


def test_default_tiers_by_hand(tier_store):
    out = tiers.assign_tiers(tier_store, "2024-06-30").set_index("member_id")
    assert out["tier"].to_dict() == {"D": "Diamond", "G": "Gold", "NEW": "Regular", "P": "Regular",
                                     "R": "Regular", "S": "Silver"}
    assert out.loc["D", "annual_spend"] == 20500.0
    assert out.loc["G", "annual_spend"] == 9000.0
    assert out.loc["P", "annual_spend"] == 0.0
    assert out.loc["R", "spend_to_next_tier"] == pytest.approx(0.01)
    assert out.loc["G", "spend_to_next_tier"] == 11000.0
    assert out["spend_to_next_tier"].isna().tolist() == [True] + [False] * 5  # D is at the top
    assert out.loc["G", "tier_rank"] == 2
    assert tiers.tier_label("Gold") == "金卡" and tiers.tier_label("Diamond", "en") == "Diamond"


def test_custom_rules_dict_and_yaml(tier_store, tmp_path):
    rules = {"window_days": 30, "tiers": [{"name": "Basic", "zh": "基础", "min_spend": 0},
                                          {"name": "Plus", "zh": "加", "min_spend": 1000}]}
    out = tiers.assign_tiers(tier_store, "2024-06-30", rules).set_index("member_id")
    assert out.loc["D", ["tier", "annual_spend"]].tolist() == ["Plus", 1500.0]  # only the June order
    assert (out.drop(index="D")["tier"] == "Basic").all()
    path = tmp_path / "tiers.yaml"
    path.write_text("window_days: 400\ntiers:\n- {name: A, min_spend: 0}\n- {name: B, min_spend: 13000}\n",
                    encoding="utf-8")
    out = tiers.assign_tiers(tier_store, "2024-06-30", path).set_index("member_id")
    assert out.loc["G", ["tier", "annual_spend"]].tolist() == ["B", 14000.0]  # both July orders now


@pytest.mark.parametrize("rules, match", [
    ({"tiers": [{"name": "A", "min_spend": 100}]}, "must have min_spend 0"),
    ({"tiers": [{"name": "A", "min_spend": 0}, {"name": "B", "min_spend": 0}]}, "must increase"),
    ({"tiers": [{"name": "A", "min_spend": 0}, {"name": "A", "min_spend": 5}]}, "unique"),
    ({"tiers": [{"name": "A", "min_spend": 0}, {"name": "B", "min_spend": "1000 OR 1=1"}]}, "numeric"),
    ({"tiers": [{"name": "A", "min_spend": 0}, {"name": "B", "min_spend": float("nan")}]}, "numeric"),
    ({"tiers": [{"name": "A", "min_spend": 0}, {"name": "B", "min_spend": 10 ** 400}]}, "numeric"),
    ({"tiers": [{"name": "A", "min_spend": 0, "sql": "DROP TABLE members"}]}, "only 'name'"),
    ({"tiers": [], "window_days": 365}, "list of 1 to 20"),
    ({"tiers": [{"name": "A", "min_spend": 0}], "window_days": True}, "window_days"),
    ({"tiers": [{"name": "A", "min_spend": 0}], "formula": "x"}, "unknown key"),
    ("no-such-file.yaml", "cannot read"),
])
def test_bad_rules_are_one_sentence(tier_store, rules, match):
    with pytest.raises(CrmkitError, match=match):
        tiers.assign_tiers(tier_store, "2024-06-30", rules)


def test_default_file_is_the_documented_rules():
    r = tiers.TierRules.load()
    assert r.names == ("Regular", "Silver", "Gold", "Diamond")
    assert r.labels_zh == ("普通", "银卡", "金卡", "钻石")
    assert r.min_spend == (0.0, 2000.0, 8000.0, 20000.0) and r.window_days == 365


def test_summary_and_migration(tier_store):
    s = tiers.tier_summary(tier_store, "2024-06-30").set_index("tier")
    assert s["members"].tolist() == [3, 1, 1, 1]
    assert s.loc["Regular", "annual_spend"] == pytest.approx(1999.99)
    # on 2024-01-31: NEW, S, R not yet members; P Regular; G (5,000 + 9,000 in the year) Gold;
    # D (25,000 on Jan 10 less 6,000 returned on Jan 20) Gold
    m = tiers.tier_migration(tier_store, "2024-01-31", "2024-06-30")
    assert m.loc["(not a member)", "Silver"] == 1 and m.loc["(not a member)", "Regular"] == 2
    assert m.loc["Gold", "Gold"] == 1      # G: 14,000 then 9,000
    assert m.loc["Gold", "Diamond"] == 1   # D: 19,000 then 20,500
    assert m.loc["Regular", "Regular"] == 1
    assert m.to_numpy().sum() == 6


def test_a_threshold_is_met_to_the_cent(con):
    # 162.32 + 580.06 + 1257.62 is 1999.9999999999998 in floating point: still ¥2,000.00
    con.executemany("INSERT INTO transactions (member_id, order_id, line_no, order_time, amount, txn_type) "
                    "VALUES ('m', ?, 1, ?, ?, 'sale')",
                    [("o1", "2024-06-01", 162.32), ("o2", "2024-06-02", 580.06), ("o3", "2024-06-03", 1257.62)])
    row = tiers.assign_tiers(con, "2024-06-30").iloc[0]
    assert (row["tier"], row["annual_spend"]) == ("Silver", 2000.0)
