"""Audience rules: hand-made answers, exports with masked or hashed PII, and malicious rules."""
import json

import pandas as pd
import pytest

from crmkit import audience, privacy
from crmkit.audience import AudienceRuleError
from crmkit.errors import CrmkitError

AS_OF = "2024-06-30"


@pytest.fixture
def aud_store(con):
    con.execute("INSERT INTO stores VALUES ('S1', '一店', '上海', '华东'), ('S2', '二店', '广州', '华南')")
    con.execute("""INSERT INTO members (member_id, phone, name, join_date, join_store_id) VALUES
        ('a', '13812345678', '张三', '2023-01-01', 'S1'), ('b', '13900001111', '李四', '2023-01-01', 'S2'),
        ('c', '13700002222', '王五', '2023-01-01', 'S1'), ('d', '13600003333', '赵六', '2023-01-01', 'S2')""")
    con.execute("""INSERT INTO transactions (member_id, order_id, line_no, order_time, store_id, category,
        amount, txn_type) VALUES
        ('a', 'o1', 1, '2024-06-20 10:00', 'S1', '美妆', 3000, 'sale'),
        ('b', 'o2', 1, '2024-01-01 10:00', 'S2', '服装', 100, 'sale'),
        ('c', 'o3', 1, '2023-03-01 10:00', 'S1', '食品', 50, 'sale')""")
    return con


def members_of(con, rule):
    return audience.select(con, rule, AS_OF)["member_id"].tolist()


# a: Silver, recency 10, Potential Loyalist (R4, F1, M4); b: dormant (181 days), Hibernating (R2 F1 M2);
# c: churned (487 days), Lost (R1 F1 M1); d: prospect in 华南, never bought
@pytest.mark.parametrize("rule, expected", [
    ({"all": [{"field": "lifecycle_stage", "op": "in", "value": ["dormant", "churned"]}]}, ["b", "c"]),
    ({"field": "days_since_last_purchase", "op": ">=", "value": 100}, ["b", "c"]),
    ({"field": "days_since_last_purchase", "op": "between", "value": [150, 200]}, ["b"]),
    ({"not": {"field": "rfm_segment", "op": "==", "value": "Lost"}}, ["a", "b", "d"]),
    ({"field": "rfm_segment", "op": "not_in", "value": ["Lost"]}, ["a", "b"]),
    ({"field": "category_bought", "op": "in", "value": ["美妆", "鞋履"], "window_days": 30}, ["a"]),
    ({"field": "category_bought", "op": "in", "value": ["美妆"], "window_days": 5}, []),
    ({"field": "category_bought", "op": "not_in", "value": ["美妆"]}, ["b", "c", "d"]),
    ({"any": [{"field": "tier", "op": "==", "value": "Silver"}, {"field": "region", "op": "==", "value": "华南"}]},
     ["a", "b", "d"]),
    ({"all": [{"field": "store_id", "op": "in", "value": ["S1"]},
              {"any": [{"field": "rfm_segment", "op": "in", "value": ["Lost", "At Risk"]},
                       {"field": "lifecycle_stage", "op": "==", "value": "active"}]}]}, ["c"]),
])
def test_rules_by_hand(aud_store, rule, expected):
    assert members_of(aud_store, rule) == expected
    assert audience.preview(aud_store, rule, AS_OF) == len(expected)


def test_rules_as_json_yaml_and_files(aud_store, tmp_path):
    rule = {"all": [{"field": "lifecycle_stage", "op": "in", "value": ["dormant", "churned"]},
                    {"field": "region", "op": "==", "value": "华东"}]}
    assert audience.preview(aud_store, json.dumps(rule, ensure_ascii=False), AS_OF) == 1
    yaml_text = "all:\n  - field: lifecycle_stage\n    op: in\n    value: [dormant, churned]\n"
    assert audience.preview(aud_store, yaml_text, AS_OF) == 2
    path = tmp_path / "rule.yaml"
    path.write_text(yaml_text, encoding="utf-8")
    assert audience.preview(aud_store, path, AS_OF) == 2
    assert audience.preview(aud_store, str(path), AS_OF) == 2


def test_score_fields_need_scores(aud_store):
    rule = {"field": "churn_band", "op": "==", "value": "high"}
    with pytest.raises(CrmkitError, match="run `crmkit score` first"):
        audience.preview(aud_store, rule, AS_OF)
    aud_store.execute("""INSERT INTO member_scores (member_id, as_of, clv, churn_risk, churn_band) VALUES
        ('a', '2024-06-30', 900, 0.1, 'low'), ('b', '2024-06-30', 200, 0.7, 'high'),
        ('c', '2024-06-30', 10, 0.95, 'high')""")
    assert members_of(aud_store, rule) == ["b", "c"]
    # CLV ranks a, b, c: positions 1/3, 2/3, 3/3 -> 20-50%, bottom 50%, bottom 50%
    assert members_of(aud_store, {"field": "clv_band", "op": "in", "value": ["top_20_50"]}) == ["a"]
    assert members_of(aud_store, {"all": [{"field": "churn_risk", "op": ">", "value": 0.5},
                                          {"field": "clv", "op": ">=", "value": 100}]}) == ["b"]


def test_export_masks_or_hashes_phones(aud_store, tmp_path, monkeypatch):
    monkeypatch.setenv("CRMKIT_SALT", "this deployment's secret")
    rule = {"field": "lifecycle_stage", "op": "in", "value": ["dormant", "churned", "active", "new"]}
    path = tmp_path / "audience.csv"
    assert audience.export(aud_store, rule, AS_OF, path) == 3
    text = path.read_text(encoding="utf-8-sig")
    assert privacy.find_raw_phones(text) == [] and "张三" not in text
    out = pd.read_csv(path, dtype=str)
    assert out["phone"].tolist() == ["138****5678", "139****1111", "137****2222"]
    assert out["name"].tolist() == ["张*", "李*", "王*"]
    assert out.columns.tolist() == list(audience.EXPORT_COLUMNS)
    pq = tmp_path / "audience.parquet"
    assert audience.export(aud_store, rule, AS_OF, pq, pii="hash") == 3
    hashed = pd.read_parquet(pq)
    assert hashed["phone"].tolist()[0] == privacy.hash_value("13812345678")
    assert privacy.find_raw_phones(hashed.to_csv()) == []
    with pytest.raises(CrmkitError, match="pii must be"):
        audience.export(aud_store, rule, AS_OF, tmp_path / "x.csv", pii="plain")
    with pytest.raises(CrmkitError, match=".csv or .parquet"):
        audience.export(aud_store, rule, AS_OF, tmp_path / "x.xlsx")


class NoSQL:
    """A connection stand-in that fails the test if anything is run on it."""

    def execute(self, *args, **kwargs):
        raise AssertionError("a query ran for an invalid rule")


MALICIOUS = [
    ({"field": "rfm_segment; DROP TABLE members; --", "op": "in", "value": ["Lost"]}, "unknown field"),
    ({"field": "rfm_segment", "op": "in (SELECT 1) OR 1=1 --", "value": ["Lost"]}, "operator"),
    ({"field": "rfm_segment", "op": "in", "value": ["Lost') OR 1=1 --"]}, "not a valid rfm_segment"),
    ({"field": "rfm_segment", "op": "==", "value": "__import__('os').system('rm -rf /')"}, "not a valid"),
    ({"field": "store_id", "op": "==", "value": "S1' OR '1'='1"}, "not a valid store_id"),
    ({"field": "region", "op": "in", "value": ["华东; DELETE FROM members"]}, "not a valid region"),
    ({"field": "category_bought", "op": "in", "value": ["美妆"], "window_days": "30 DAY) OR (1=1"},
     "window_days"),
    ({"field": "days_since_last_purchase", "op": ">=", "value": 10 ** 12}, "from 0 to 36500"),
    ({"field": "days_since_last_purchase", "op": ">=", "value": -5}, "from 0 to 36500"),
    ({"field": "days_since_last_purchase", "op": ">=", "value": "60 OR 1=1"}, "whole number"),
    ({"field": "days_since_last_purchase", "op": ">=", "value": True}, "whole number"),
    ({"field": "days_since_last_purchase", "op": ">=", "value": 6.5}, "whole number"),
    ({"field": "churn_risk", "op": "<", "value": float("nan")}, "a number"),
    ({"field": "clv", "op": "between", "value": [500, 100]}, "low <= high"),
    ({"field": "tier", "op": "==", "value": "Platinum"}, "not a valid tier"),
    ({"field": "rfm_segment", "op": "in", "value": []}, "list of 1 to"),
    ({"field": "rfm_segment", "op": "in", "value": "Lost"}, "list of 1 to"),
    ({"field": "rfm_segment", "op": "in", "value": ["Lost"], "sql": "DROP TABLE members"}, "exactly the keys"),
    ({"all": []}, "non-empty list"),
    ({"all": [{"any": [{"not": {"all": [{"field": "tier", "op": "==", "value": "Gold"}]}}]}]}, "nested deeper"),
    ({"any": [{"field": "tier", "op": "==", "value": "Gold"}] * 51}, "more than 50"),
    ({"exec": "import os"}, "unknown field"),
    ({"all": [{"field": "tier", "op": "==", "value": "Gold"}], "any": []}, "exactly one key"),
    ("no-such-rule.json", "cannot read"),
    ("!!python/object/apply:os.system ['touch /tmp/crmkit-pwned']", "neither valid JSON nor valid YAML"),
    ("rfm_segment = 'Lost' OR 1=1", "must be a mapping"),
    (["rfm_segment"], "expected a mapping"),
    ({"field": "days_since_last_purchase", "op": ">=", "value": 10 ** 400}, "whole number"),
    ('{"field": "clv", "op": ">", "value": ' + "9" * 5000 + "}", "neither valid JSON nor valid YAML"),
    ('{"all": ' + "[" * 5000 + "]" * 5000 + "}", "neither valid JSON nor valid YAML"),
    (42, "expected a mapping"),
]


@pytest.mark.parametrize("rule, match", MALICIOUS)
def test_malicious_rules_are_refused_before_anything_runs(rule, match):
    with pytest.raises(AudienceRuleError, match=match) as err:
        audience.preview(NoSQL(), rule, AS_OF)
    message = str(err.value)
    assert message.startswith("audience rule: ") and "\n" not in message and len(message) < 400
    with pytest.raises(AudienceRuleError):
        audience.export(NoSQL(), rule, AS_OF, "never-written.csv")


def test_store_is_untouched_by_refused_rules(aud_store, tmp_path):
    for rule, _ in MALICIOUS:
        with pytest.raises(AudienceRuleError):
            audience.select(aud_store, rule, AS_OF)
    assert aud_store.execute("SELECT count(*) FROM members").fetchone()[0] == 4
    assert not (tmp_path / "crmkit-pwned").exists()


def test_a_fully_refunded_order_is_no_purchase_of_its_category(aud_store):
    aud_store.execute("""INSERT INTO transactions (member_id, order_id, line_no, order_time, store_id, category,
        amount, txn_type) VALUES ('d', 'o9', 1, '2024-06-01 10:00', 'S2', '美妆', 500, 'sale'),
                                 ('d', 'o9', 2, '2024-06-02 10:00', 'S2', '美妆', -500, 'return')""")
    assert members_of(aud_store, {"field": "category_bought", "op": "in", "value": ["美妆"]}) == ["a"]
    assert "d" in members_of(aud_store, {"field": "category_bought", "op": "not_in", "value": ["美妆"]})


def _billion_laughs(levels: int = 9) -> str:
    """The classic YAML "billion laughs" inside a rule: each level is nine aliases of the one before."""
    text = ("all:\n  - field: region\n    op: in\n    value:\n"
            '      - &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n')
    for i in range(1, levels):
        text += f"      - &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]\n"
    return text


def test_yaml_alias_bomb_is_refused_in_one_short_sentence(aud_store):
    bomb = _billion_laughs()
    assert len(bomb) < 600
    with pytest.raises(AudienceRuleError) as info:
        audience.preview(aud_store, bomb, AS_OF)
    assert str(info.value) == ("audience rule: the YAML expands to more than 100,000 values "
                               "through its aliases (&/*).")
    with pytest.raises(AudienceRuleError, match="refers to the node that contains it"):
        audience.parse_rule("loop: &x [1, *x]\n")


def test_yaml_aliases_within_the_bound_still_work(aud_store):
    rule = ("all:\n  - field: lifecycle_stage\n    op: in\n    value: &s [dormant, churned]\n"
            "  - not: {field: lifecycle_stage, op: not_in, value: *s}\n")
    assert audience.preview(aud_store, rule, AS_OF) == 2


def test_a_huge_value_is_never_formatted_whole_into_the_message(aud_store):
    # 4 levels of aliases stay within the node bound; the message shows 40 characters of the
    # offending value, built without formatting the rest.
    with pytest.raises(AudienceRuleError, match=r"region values are text, not \['lol'") as info:
        audience.preview(aud_store, _billion_laughs(4), AS_OF)
    assert len(str(info.value)) < 200
    huge = [list(range(10**6))] * 10**3  # a billion items by reference
    assert audience._show(huge) == "[[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1..."
    assert audience._show({"b": 1, "a": (2,)}) == "{'b': 1, 'a': (2,)}"


def test_every_value_of_a_list_is_bound_on_its_own(aud_store):
    """Lists compile to ``IN ($p, $q, ...)``: no list parameter or list function, so the SQL stays in the
    engine's portable subset (tests/test_portable_sql.py), and a thousand values still select right."""
    stores = ["S1"] + [f"X{i}" for i in range(999)]
    rule = {"all": [{"field": "store_id", "op": "in", "value": stores},
                    {"field": "category_bought", "op": "not_in", "value": ["美妆", "鞋履"]}]}
    compiled = audience.compile_rule(rule)
    assert not any(isinstance(v, (list, tuple)) for v in compiled.params.values())
    assert "list_" not in compiled.where
    assert members_of(aud_store, rule) == ["c"]
    assert members_of(aud_store, {"field": "region", "op": "not_in", "value": ["华东"]}) == ["b", "d"]
