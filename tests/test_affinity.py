"""Association rules, cross-sell by segment and preferred categories, on hand-made baskets."""
import pytest

from crmkit import affinity
from crmkit.errors import CrmkitError


def add_lines(con, rows):
    """rows: (member_id, order_id, day, category, amount)."""
    con.executemany(
        "INSERT INTO transactions (member_id, order_id, line_no, order_time, category, amount, txn_type) "
        "VALUES (?, ?, ?, CAST(? AS TIMESTAMP) + INTERVAL 11 HOUR, ?, ?, ?)",
        [[m, o, i, d, c, a, "return" if a < 0 else "sale"] for i, (m, o, d, c, a) in enumerate(rows)])


@pytest.fixture
def basket_store(con):
    add_lines(con, [
        ("m1", "o1", "2024-06-01", "美妆", 100), ("m1", "o1", "2024-06-01", "护肤", 50),
        ("m1", "o2", "2024-06-10", "美妆", 30), ("m1", "o2", "2024-06-10", "护肤", 80),
        ("m1", "o2", "2024-06-10", "服装", 200),
        ("m2", "o3", "2024-06-02", "美妆", 60),
        ("m2", "o4", "2024-06-03", "服装", 90), ("m2", "o4", "2024-06-03", "鞋履", 120),
        ("m3", "o5", "2024-06-04", "护肤", 70),
        ("m3", "o6", "2024-06-05", "服装", 40), ("m3", "o6", "2024-06-05", "鞋履", 60),
        ("m4", "o7", "2024-06-06", "食品", 40), ("m4", "o7", "2024-06-08", "食品", -40),
        ("m4", "o8", "2022-01-01", "美妆", 10), ("m4", "o8", "2022-01-01", "护肤", 10),  # outside the window
    ])
    return con


def test_rules_by_hand(basket_store):
    # 6 order baskets in the window (o7 is returned in full: no purchase, so no basket; crmkit.engine.activity);
    # 美妆 3, 护肤 3, 服装 3, 鞋履 2; pairs 美妆+护肤 2, 服装+鞋履 2
    r = affinity.association_rules(basket_store, "2024-06-30", min_count=2)
    assert list(zip(r["antecedent"], r["consequent"])) == [
        ("服装", "鞋履"), ("鞋履", "服装"), ("护肤", "美妆"), ("美妆", "护肤")]
    shoes = r.iloc[1]
    assert (shoes.n_both, shoes.n_antecedent, shoes.n_consequent, shoes.n_baskets) == (2, 2, 3, 6)
    assert shoes.support == pytest.approx(2 / 6) and shoes.confidence == 1.0
    assert shoes.lift == pytest.approx(1 / (3 / 6))
    beauty = r.iloc[3]
    assert beauty.confidence == pytest.approx(2 / 3) and beauty.lift == pytest.approx((2 / 3) / (3 / 6))
    # with single co-occurrences allowed, 美妆 -> 服装 (once in 6) appears: lift (1/3) / (3/6)
    r1 = affinity.association_rules(basket_store, "2024-06-30", min_count=1)
    row = r1[(r1.antecedent == "美妆") & (r1.consequent == "服装")].iloc[0]
    assert row.lift == pytest.approx(2 / 3)
    assert affinity.association_rules(basket_store, "2024-06-30", min_count=1, min_confidence=0.9)[
        "antecedent"].tolist() == ["鞋履"]


def test_member_baskets(basket_store):
    # per member: m1 {美妆, 护肤, 服装}, m2 {美妆, 服装, 鞋履}, m3 {护肤, 服装, 鞋履}; m4 returned its only
    # order of the window in full, so bought nothing there and has no basket
    r = affinity.association_rules(basket_store, "2024-06-30", basket="member", min_count=2)
    row = r[(r.antecedent == "鞋履") & (r.consequent == "服装")].iloc[0]
    assert (row.n_both, row.n_baskets, row.confidence) == (2, 3, 1.0)
    assert row.lift == pytest.approx(1 / (3 / 3))


@pytest.mark.parametrize("kw, match", [
    ({"level": "category; DROP TABLE transactions"}, "level"),
    ({"basket": "store"}, "basket"),
    ({"window_days": 0}, "window_days"),
    ({"min_support": 2}, "min_support"),
])
def test_bad_arguments(basket_store, kw, match):
    with pytest.raises(CrmkitError, match=match):
        affinity.association_rules(basket_store, "2024-06-30", **kw)


def test_preferred_categories(basket_store):
    p = affinity.preferred_categories(basket_store, "2024-06-30", top=2)
    m1 = p[p.member_id == "m1"]
    # m1: 服装 200, 美妆 130, 护肤 130 (tie on spend and orders: by name, 护 < 美)
    assert m1["category"].tolist() == ["服装", "护肤"] and m1["spend"].tolist() == [200.0, 130.0]
    assert m1["share"].iloc[0] == pytest.approx(200 / 460)
    assert "m4" not in set(p.member_id)  # 食品 was returned: nothing preferred
    one = affinity.preferred_categories(basket_store, "2024-06-30", member_id="m2")
    assert one[["category", "rank"]].values.tolist() == [["鞋履", 1]]


def test_cross_sell_by_segment(con):
    # five identical low buyers (2023) -> Lost; five identical high buyers -> R3 F3 M3 -> Need Attention
    rows = [(f"l{i}", f"lo{i}", "2023-01-01", "食品", 10) for i in range(5)]
    cats = {"h1": ("美妆", "护肤"), "h2": ("美妆", "护肤"), "h3": ("美妆", "美妆"), "h4": ("服装", "服装"),
            "h5": ("服装", "护肤")}
    for m, (c1, c2) in cats.items():
        rows += [(m, f"{m}a", "2024-06-01", c1, 50), (m, f"{m}b", "2024-06-20", c2, 50)]
    add_lines(con, rows)
    out = affinity.cross_sell(con, "2024-06-30", min_count=1)
    # in Need Attention (5 members): 美妆 3, 护肤 3, both 2 -> lift (2/3)/(3/5) = 10/9;
    # 服装 -> 护肤 has lift (1/2)/(3/5) < 1 and is left out
    assert out["rfm_segment"].unique().tolist() == ["Need Attention"]
    assert list(zip(out["antecedent"], out["consequent"])) == [("护肤", "美妆"), ("美妆", "护肤")]
    assert out["lift"].tolist() == pytest.approx([10 / 9, 10 / 9])
    assert out["potential"].tolist() == [1, 1]  # h5 has 护肤 without 美妆; h3 美妆 without 护肤
    assert len(affinity.cross_sell(con, "2024-06-30", min_count=1, top=1)) == 1


def test_cross_sell_ties_are_broken_by_name(con):
    """A rule and its mirror have the same lift and count: the top ones are taken, and listed, by antecedent
    then consequent, so that ``top`` and the order never depend on the engine (window + filter, no QUALIFY)."""
    rows = []
    for m, (c1, c2) in {"h1": ("美妆", "护肤"), "h2": ("美妆", "护肤"), "h3": ("美妆", "美妆"),
                        "h4": ("服装", "服装"), "h5": ("服装", "护肤")}.items():
        rows += [(m, f"{m}a", "2024-06-01", c1, 50), (m, f"{m}b", "2024-06-20", c2, 50)]
    add_lines(con, rows)
    for top, expected in ((1, [("护肤", "美妆")]), (2, [("护肤", "美妆"), ("美妆", "护肤")])):
        out = affinity.cross_sell(con, "2024-06-30", min_count=1, top=top)
        assert list(zip(out["antecedent"], out["consequent"])) == expected
