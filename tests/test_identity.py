"""Identity resolution: POS cards, mall users and mini-program open ids become one member view."""
from __future__ import annotations

import datetime as dt

import duckdb
import pytest

import crmkit
from crmkit import privacy
from crmkit.io import load_files, quarantine

NOW = dt.datetime(2026, 7, 1)
POS = ("pos_members.csv", "会员卡号,手机号,姓名,性别,入会日期,入会门店\n"
       "8801,138 1234 5678,张三,男,2024-03-01,S1\n"
       "8802,13900000001,李四,女,2024-05-01,S2\n"
       "8803,13700000002,王五,男,2024-06-01,S1\n")
MALL = ("mall_members.csv", "user_id,mobile,nickname,register_time\n"
        "U1,+86 138 1234 5678,阿三,2024/1/15 10:00\n"
        "U2,86-150-0000-0003,Lily,2024/2/1 11:00\n")
MINI = ("miniapp_members.csv", "openid,手机号,绑定卡号,注册时间\n"
        "oAAAA1111111111,13812345678,,2024-07-01 12:00\n"
        "oBBBB2222222222,,8802,2024-07-02 12:00\n"
        "oCCCC3333333333,,,2024-07-03 12:00\n")


def write(folder, name, text):
    p = folder / name
    p.write_text(text, encoding="utf-8")
    return p


def load(con, *paths, **kw):
    return load_files(con, list(paths), progress=False, now=NOW, **kw)


def member_view(con):
    return con.execute("SELECT i.source, i.source_id, m.member_id, m.phone, m.name, m.join_date, m.join_channel "
                       "FROM member_identities i JOIN members m USING (member_id) ORDER BY 1, 2").fetchall()


def test_phones_in_any_format_and_bound_cards_merge_records(con, tmp_path):
    report = load(con, *(write(tmp_path, *f) for f in (POS, MALL, MINI)))
    assert (report.source_records, report.resolved_members, report.members) == (8, 5, 5)
    rows = {(s, i): rest for s, i, *rest in member_view(con)}
    zhang = rows[("pos", "8801")]
    assert rows[("online", "U1")] == zhang == rows[("miniapp", "oAAAA1111111111")]
    # earliest registration wins the join date and channel; the POS name wins over the mall nickname
    assert zhang[1:] == ["13812345678", "张三", dt.date(2024, 1, 15), "online"]
    assert rows[("miniapp", "oBBBB2222222222")] == rows[("pos", "8802")]
    assert rows[("miniapp", "oCCCC3333333333")][1] is None
    # member ids are numbered by earliest join date
    assert zhang[0] == "M00000001" and rows[("online", "U2")][0] == "M00000002"


def test_ids_do_not_depend_on_the_order_of_files(tmp_path):
    views = []
    for order in ((POS, MALL, MINI), (MINI, POS, MALL)):
        folder = tmp_path / f"run{len(views)}"
        folder.mkdir()
        con = crmkit.connect(":memory:")
        load(con, *(write(folder, *f) for f in order))
        views.append(member_view(con))
    assert views[0] == views[1]


def test_a_record_that_bridges_two_members_merges_them_everywhere(con, tmp_path):
    load(con, write(tmp_path, *POS), write(tmp_path, *MALL))
    load(con, write(tmp_path, "orders.csv", "order_id,card_no,user_id,order_time,amount\n"
                    "O1,8803,,2024-06-02,30\nO2,,U2,2024-06-03,40\n"))
    load(con, write(tmp_path, "campaign_assignments.csv", "campaign_id,card_no,user_id,group\n"
                    "K1,8803,,treatment\nK1,,U2,control\n"))
    ids = dict(((s, i), m) for s, i, m, *_ in member_view(con))
    wang, lily = ids[("pos", "8803")], ids[("online", "U2")]
    assert wang != lily
    # a mini-program user with Lily's phone, bound to Wang's card: one person after all
    report = load(con, write(tmp_path, "mini_bridge.csv", "openid,phone,bind_card_no\n"
                             "oDDDD4444444444,15000000003,8803\n"))
    assert (report.merged_members, report.new_members, report.members) == (1, 0, 3)
    keep, gone = sorted([wang, lily])
    assert con.execute("SELECT DISTINCT member_id FROM transactions").fetchall() == [(keep,)]
    assert con.execute("SELECT count(*) FROM members WHERE member_id = ?", [gone]).fetchall() == [(0,)]
    assert con.execute("SELECT count(*), min(member_id) FROM campaign_assignments").fetchall() == [(1, keep)]
    assert con.execute("SELECT count(DISTINCT member_id) FROM member_identities WHERE source_id IN "
                       "('8803', 'U2', 'oDDDD4444444444')").fetchall() == [(1,)]


def test_a_re_export_keeps_ids_and_adds_new_members(con, tmp_path):
    load(con, write(tmp_path, *POS))
    before = member_view(con)
    report = load(con, write(tmp_path, "pos_members_2.csv", POS[1] + "8804,13600000004,赵六,女,2024-08-01,S3\n"))
    assert (report.source_records, report.new_members, report.members) == (4, 1, 4)
    assert [r for r in member_view(con) if r[1] != "8804"] == before
    assert member_view(con)[-1][2] == "M00000004"


def test_invalid_phone_is_quarantined(con, tmp_path):
    report = load(con, write(tmp_path, "members.csv", "card_no,phone\nC1,12345\nC2,+86 139 0000 0001\n"))
    assert (report.files[0].accepted, report.files[0].rejected) == (1, 1)
    assert con.execute("SELECT reason, raw FROM quarantine").fetchall() == [
        ("invalid phone", '{"card_no":"C1","phone":"*****"}')]


def test_personal_data_lives_only_in_members_and_identities(tmp_path):
    from fixtures_demo import DEMO_SEED
    from crmkit.demo import generate

    generate(tmp_path / "exports", members=400, seed=DEMO_SEED)
    con = crmkit.connect(":memory:")
    load(con, tmp_path / "exports")
    phones = {p for p, in con.execute("SELECT phone FROM members WHERE phone IS NOT NULL").fetchall()}
    names = {n for n, in con.execute("SELECT name FROM members WHERE name IS NOT NULL").fetchall()}
    open_ids = {i for i, in con.execute("SELECT source_id FROM member_identities WHERE source = 'miniapp'").fetchall()}
    assert phones and names and open_ids
    for table, column in con.execute("SELECT table_name, column_name FROM information_schema.columns "
                                     "WHERE data_type = 'VARCHAR' AND table_name NOT IN "
                                     "('members', 'member_identities')").fetchall():
        values = {v for v, in con.execute(f'SELECT DISTINCT "{column}" FROM "{table}"').fetchall() if v}
        text = " ".join(values)
        assert not values & (names | open_ids), (table, column)
        assert not privacy.find_raw_phones(text), (table, column)


@pytest.mark.parametrize("value", ["13812345678", "+86 138 1234 5678", "86-138-1234-5678", "12345", "",
                                   "张三", "欧阳娜娜", "Alice", " 李 ", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "abc"])
def test_quarantine_masks_agree_with_privacy(value):
    con = duckdb.connect()
    quarantine.install_masks(con)
    got = con.execute("SELECT crmkit_mask_phone(?), crmkit_mask_name(?), crmkit_mask_id(?)",
                      [value, value, value]).fetchall()[0]
    assert got == (privacy.mask_phone(value), privacy.mask_name(value), privacy.mask_id(value))
