"""The demo chain's export files, one function per source system.

- ``stores.csv``, ``products.csv``: master data (UTF-8).
- ``pos_members.csv``, ``pos_transactions.csv``: the POS, GBK with Chinese headers,
  phones as ``13812345678`` or ``138 1234 5678``, returns as 退货 rows.
- ``mall_members.csv`` (UTF-8 with BOM), ``mall_orders.csv``: the online mall, English headers,
  phones as ``+86 138 1234 5678`` / ``86-138-1234-5678``, dates as ``2024/1/31 10:22``,
  amounts as ``¥1,299.00``, refunds as positive amounts with ``trade_type=refund``.
- ``miniapp_members.xlsx``, ``miniapp_orders.parquet``: the mini-program; phone sometimes
  missing, some accounts bound to a POS card.
- ``campaigns.csv``, ``campaign_assignments.csv``, ``coupons.csv``, ``points.csv``,
  ``store_sales.csv``: the CRM and the tills.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import world
from .campaigns import Run
from .exports import Plant, Writer, timestamps
from .people import END, MINIAPP, ONLINE, POS, People
from .purchases import Lines, Orders

ORDER_PREFIX = ("P", "E", "W")


def stores_and_products(w: Writer, stores: world.Stores) -> None:
    w.frame("stores_df", pd.DataFrame({"store_id": stores.ids, "store_name": stores.names, "city": stores.cities,
                                       "region": stores.regions}))
    w.write("stores.csv", "SELECT * FROM stores_df ORDER BY store_id")
    cats = world.category_names()
    w.frame("products_df", pd.DataFrame({"sku": world.sku_codes(),
                                         "category": np.repeat(cats, world.SKUS_PER_CATEGORY)}))
    w.write("products.csv", "SELECT * FROM products_df ORDER BY sku")


def members(w: Writer, people: People, stores: world.Stores) -> None:
    rng = w.rng
    reg = people.registered
    w.frame("people_df", pd.DataFrame({
        "card_no": people.card_no, "user_id": people.user_id, "open_id": people.open_id,
        "phone": people.phone.astype(str), "name": people.name, "nickname": people.nickname,
        "gender": people.gender, "birth": timestamps(np.floor(people.birth)).astype("datetime64[s]"),
        "reg_pos": timestamps(np.where(people.has[:, POS], reg[:, POS], np.nan)),
        "reg_online": timestamps(np.where(people.has[:, ONLINE], reg[:, ONLINE], np.nan)),
        "reg_mini": timestamps(np.where(people.has[:, MINIAPP], reg[:, MINIAPP], np.nan)),
        "bound_card": people.bound_card, "miniapp_phone": people.miniapp_phone,
        "store_id": stores.ids[people.home_store], "f1": rng.random(people.n), "f2": rng.random(people.n),
        "f3": rng.random(people.n),
    }))
    spaced = "substr(phone, 1, 3) || '{s}' || substr(phone, 4, 4) || '{s}' || substr(phone, 8, 4)"
    w.write("pos_members.csv", f"""
        SELECT card_no AS 会员卡号, CASE WHEN f1 < 0.8 THEN phone ELSE {spaced.format(s=' ')} END AS 手机号,
               name AS 姓名, CASE gender WHEN 'F' THEN '女' ELSE '男' END AS 性别,
               CASE WHEN f2 < 0.7 THEN strftime(birth, '%Y-%m-%d') ELSE strftime(birth, '%Y%m%d') END AS 出生日期,
               strftime(reg_pos, '%Y-%m-%d') AS 入会日期, store_id AS 入会门店
        FROM people_df WHERE reg_pos IS NOT NULL ORDER BY reg_pos, card_no""",
            [Plant("duplicate member record", "true") for _ in range(2)], encoding="gbk")
    w.write("mall_members.csv", f"""
        SELECT user_id, CASE WHEN f1 < 0.4 THEN '+86 ' || {spaced.format(s=' ')}
                             WHEN f1 < 0.7 THEN '86-' || {spaced.format(s='-')} ELSE '+86' || phone END AS mobile,
               nickname, CASE WHEN f2 < 0.15 THEN 'unknown' WHEN gender = 'F' THEN 'female' ELSE 'male' END AS gender,
               CASE WHEN f3 < 0.5 THEN strftime(birth, '%Y/%-m/%-d') END AS birthday,
               strftime(reg_online, '%Y/%-m/%-d %H:%M') AS register_time
        FROM people_df WHERE reg_online IS NOT NULL ORDER BY reg_online, user_id""", bom=True)
    w.write("miniapp_members.xlsx", f"""
        SELECT open_id AS openid,
               CASE WHEN miniapp_phone THEN CASE WHEN f1 < 0.7 THEN phone ELSE '+86-' || {spaced.format(s='-')} END
               END AS 手机号, nickname AS 昵称, CASE WHEN bound_card THEN card_no END AS 绑定卡号,
               reg_mini AS 注册时间
        FROM people_df WHERE reg_mini IS NOT NULL ORDER BY reg_mini, open_id""", fmt="xlsx")


def order_ids(orders: Orders) -> np.ndarray:
    """``P0000000001``-style ids, numbered by time within each channel."""
    ids = np.empty(len(orders), dtype=object)
    for ch, prefix in enumerate(ORDER_PREFIX):
        idx = np.flatnonzero(orders.channel == ch)
        idx = idx[np.argsort(orders.t[idx], kind="stable")]
        ids[idx] = np.char.add(prefix, np.char.zfill(np.arange(1, len(idx) + 1).astype(str), 10))
    return ids


def transactions(w: Writer, people: People, stores: world.Stores, orders: Orders, lines: Lines,
                 ids: np.ndarray) -> None:
    sale = _line_frame(people, stores, orders, lines, ids, returns=False)
    back = _line_frame(people, stores, orders, lines.take(lines.returned), ids, returns=True)
    df = pd.concat([sale, back], ignore_index=True)
    df["f"] = w.rng.random(len(df))
    w.frame("lines_df", df)
    w.write("pos_transactions.csv", """
        SELECT order_id AS 小票号, line_no AS 行号,
               CASE WHEN f < 0.85 THEN strftime(ts, '%Y-%m-%d %H:%M:%S')
                    WHEN f < 0.95 THEN strftime(ts, '%Y-%m-%d %H:%M')
                    ELSE strftime(ts, '%Y%m%d') END AS 交易时间,
               store_id AS 门店编号, card_no AS 会员卡号, sku AS 商品编码, category AS 品类,
               CAST(qty AS INTEGER) AS 数量, printf('%.2f', amount) AS 金额, printf('%.2f', discount) AS 折扣,
               nullif(coupon, '') AS 券号, CASE WHEN is_return THEN '退货' ELSE '销售' END AS 交易类型
        FROM lines_df WHERE channel = 0 ORDER BY ts, order_id, line_no, is_return""", [
        *(Plant("unparseable date: order_time", "交易类型 = '销售'", {"小票号": "小票号 || 'X'", "交易时间": f"'{bad}'"})
          for bad in ("2025-02-30 12:00:00", "昨天", "2025/13/01")),
        *(Plant("negative amount on a sale", "交易类型 = '销售'", {"小票号": "小票号 || 'N'", "金额": "'-' || 金额"})
          for _ in range(3)),
        *(Plant("duplicate order line", "交易类型 = '销售'") for _ in range(3)),
        *(Plant("unknown member", "交易类型 = '销售'", {"小票号": "小票号 || 'U'", "会员卡号": f"'88000{k:07d}'"})
          for k in (123457, 2468013, 9081726)),
    ], encoding="gbk")
    w.write("mall_orders.csv", """
        SELECT order_id AS order_no, line_no AS item_no, user_id, strftime(ts, '%Y/%-m/%-d %H:%M:%S') AS pay_time,
               sku AS sku_id, category AS category_name, CAST(abs(qty) AS INTEGER) AS qty,
               CASE WHEN f < 0.3 THEN '¥' || format('{:,.2f}', abs(amount))
                    WHEN f < 0.4 THEN format('{:,.2f}', abs(amount))
                    ELSE printf('%.2f', abs(amount)) END AS pay_amount,
               printf('%.2f', discount) AS discount_amount, nullif(coupon, '') AS coupon_code,
               CASE WHEN is_return THEN 'refund' ELSE 'payment' END AS trade_type
        FROM lines_df WHERE channel = 1 ORDER BY ts, order_id, line_no, is_return""", [
        *(Plant("unparseable date: order_time", "trade_type = 'payment'", {"order_no": "order_no || 'X'",
                                                                          "pay_time": f"'{bad}'"})
          for bad in ("2025/2/30 10:00:00", "N/A", "2025-13-01 10:00")),
        *(Plant("future date: order_time", "trade_type = 'payment'", {"order_no": "order_no || 'F'",
                                                                     "pay_time": "'2099/1/1 10:00:00'"})
          for _ in range(2)),
        *(Plant("unparseable number: amount", "trade_type = 'payment'", {"order_no": "order_no || 'A'",
                                                                        "pay_amount": f"'{bad}'"})
          for bad in ("待定", "¥--")),
        *(Plant("duplicate order line", "trade_type = 'payment'") for _ in range(2)),
    ])
    fake = world.open_ids(np.random.default_rng(0), 3)
    w.write("miniapp_orders.parquet", """
        SELECT order_id, line_no, open_id AS openid, ts AS pay_time, nullif(store_id, '') AS store_id, sku, category,
               qty AS quantity, amount, discount, nullif(coupon, '') AS coupon_id,
               CASE WHEN is_return THEN 'return' ELSE 'sale' END AS type
        FROM lines_df WHERE channel = 2 ORDER BY ts, order_id, line_no, is_return""", [
        *(Plant("unknown member", "type = 'sale'", {"order_id": "order_id || 'U'", "openid": f"'{oid}'"})
          for oid in fake),
        *(Plant("duplicate order line", "type = 'sale'") for _ in range(2)),
        *(Plant("negative amount on a sale", "type = 'sale'", {"order_id": "order_id || 'N'", "amount": "-amount"})
          for _ in range(2)),
    ], fmt="parquet")


def _line_frame(people: People, stores: world.Stores, orders: Orders, lines: Lines, ids: np.ndarray,
                returns: bool) -> pd.DataFrame:
    o = lines.order
    who = orders.person[o]
    channel = orders.channel[o]
    sign = -1.0 if returns else 1.0
    store = np.where(orders.store[o] >= 0, stores.ids[np.maximum(orders.store[o], 0)], "")
    return pd.DataFrame({
        "order_id": ids[o], "line_no": lines.line_no, "ts": timestamps(lines.t_return if returns else orders.t[o]),
        "channel": channel, "store_id": store, "card_no": people.card_no[who], "user_id": people.user_id[who],
        "open_id": people.open_id[who], "sku": world.sku_codes()[lines.sku],
        "category": world.category_names()[lines.category], "qty": sign * lines.quantity,
        "amount": sign * lines.amount, "discount": np.zeros(len(lines)) if returns else lines.discount,
        "coupon": np.where(returns, "", lines.coupon).astype(str), "is_return": np.full(len(lines), returns),
    })


def campaigns(w: Writer, people: People, runs: list[Run], orders: Orders, ids: np.ndarray) -> None:
    w.frame("campaigns_df", pd.DataFrame([{
        "campaign_id": r.campaign.campaign_id, "name": r.campaign.name, "channel": r.campaign.channel,
        "start": r.campaign.start.isoformat(), "end": r.campaign.end.isoformat(),
        "attribution_days": r.campaign.attribution_days, "cost_per_contact": r.campaign.cost_per_contact,
        "fixed_cost": r.campaign.fixed_cost, "coupon_value": r.campaign.coupon_value,
        "margin_rate": r.campaign.margin_rate} for r in runs]))
    w.write("campaigns.csv", "SELECT * FROM campaigns_df ORDER BY campaign_id")
    assign, coupons = [], []
    for r in runs:
        card, user, opn = _campaign_ids(people, r)
        start = float(r.campaign.day)
        assign.append(pd.DataFrame({
            "campaign_id": r.campaign.campaign_id, "card_no": card, "user_id": user, "open_id": opn,
            "group": np.where(r.treated, "treatment", "control"), "contacted_at": timestamps(r.contacted_at)}))
        t = r.treated
        red = r.redeemed_order[t]
        coupons.append(pd.DataFrame({
            "coupon_id": r.coupon_id[t].astype(str), "campaign_id": r.campaign.campaign_id, "card_no": card[t],
            "user_id": user[t], "open_id": opn[t], "value": r.campaign.coupon_value,
            "issued_at": timestamps(np.where(np.isnan(r.contacted_at[t]), start + 9 / 24, r.contacted_at[t])),
            "redeemed_at": timestamps(np.where(red >= 0, orders.t[np.maximum(red, 0)], np.nan)),
            "order_id": np.where(red >= 0, ids[np.maximum(red, 0)], "").astype(str)}))
    w.frame("assign_df", pd.concat(assign, ignore_index=True))
    w.write("campaign_assignments.csv", """
        SELECT campaign_id, nullif(card_no, '') AS card_no, nullif(user_id, '') AS user_id,
               nullif(open_id, '') AS open_id, "group", strftime(contacted_at, '%Y-%m-%d %H:%M:%S') AS contacted_at
        FROM assign_df""")
    w.frame("coupons_df", pd.concat(coupons, ignore_index=True))
    w.write("coupons.csv", """
        SELECT coupon_id, campaign_id, nullif(card_no, '') AS card_no, nullif(user_id, '') AS user_id,
               nullif(open_id, '') AS open_id, value, strftime(issued_at, '%Y-%m-%d %H:%M:%S') AS issued_at,
               strftime(redeemed_at, '%Y-%m-%d %H:%M:%S') AS redeemed_at, nullif(order_id, '') AS order_id
        FROM coupons_df ORDER BY coupon_id""")


def _campaign_ids(people: People, r: Run) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The id a campaign system knows each assigned member by: phone campaigns the primary id, the app the
    mall user id, WeChat the open id."""
    p = r.person
    blank = np.full(len(p), "", dtype=object)
    if r.campaign.channel == "app_push":
        return blank, people.user_id[p].astype(object), blank
    if r.campaign.channel == "wechat":
        return blank, blank, people.open_id[p].astype(object)
    card, user, opn = people.primary_id
    return card[p].astype(object), user[p].astype(object), opn[p].astype(object)


def points(w: Writer, people: People, orders: Orders, lines: Lines, ids: np.ndarray) -> None:
    """Loyalty points: one point per yuan paid, taken back on returns; some members redeem 1,000."""
    paid = np.bincount(lines.order, lines.amount, minlength=len(orders))
    earn = np.flatnonzero(paid >= 1)
    back = np.flatnonzero(lines.returned & (lines.amount >= 1))
    total = np.bincount(orders.person[earn], np.floor(paid[earn]), minlength=people.n)
    last = np.full(people.n, -np.inf)
    np.maximum.at(last, orders.person, orders.t)
    redeem_t = last + 1 + 20 * w.rng.random(people.n)
    redeemer = np.flatnonzero((total >= 2000) & (w.rng.random(people.n) < 0.4) & (redeem_t < END))
    who = np.concatenate([orders.person[earn], orders.person[lines.order[back]], redeemer])
    card, user, opn = (x[who] for x in people.primary_id)
    w.frame("points_df", pd.DataFrame({
        "card_no": card, "user_id": user, "open_id": opn,
        "event_time": timestamps(np.concatenate([orders.t[earn], lines.t_return[back], redeem_t[redeemer]])),
        "points": np.concatenate([np.floor(paid[earn]), -np.floor(lines.amount[back]),
                                  np.full(len(redeemer), -1000.0)]).astype(int),
        "event_type": np.repeat(["消费获得", "退货扣减", "积分兑换"], [len(earn), len(back), len(redeemer)]),
        "order_id": np.concatenate([ids[earn], ids[lines.order[back]], np.full(len(redeemer), "")]).astype(str)}))
    w.write("points.csv", """
        SELECT nullif(card_no, '') AS card_no, nullif(user_id, '') AS user_id, nullif(open_id, '') AS open_id,
               strftime(event_time, '%Y-%m-%d %H:%M:%S') AS event_time, points, event_type,
               nullif(order_id, '') AS order_id
        FROM points_df ORDER BY event_time, order_id""")


def store_sales(w: Writer, stores: world.Stores, orders: Orders, lines: Lines) -> None:
    """Daily till totals per store: members' POS sales plus everyone else's (about as much again)."""
    n_days, n_stores = int(END), len(stores.ids)
    pos = orders.channel[lines.order] == POS
    store = orders.store[lines.order]
    day = np.floor(orders.t[lines.order]).astype(int)
    cell = store * n_days + day
    member = np.bincount(cell[pos], lines.amount[pos], minlength=n_stores * n_days)
    back = pos & lines.returned
    ret_day = np.floor(np.nan_to_num(lines.t_return)).astype(int)
    member -= np.bincount((store * n_days + ret_day)[back], lines.amount[back], minlength=n_stores * n_days)
    till = np.flatnonzero(orders.channel == POS)
    receipts = np.bincount(orders.store[till] * n_days + np.floor(orders.t[till]).astype(int),
                           minlength=n_stores * n_days)
    base = member.reshape(n_stores, n_days).mean(axis=1) * w.rng.uniform(0.6, 1.3, n_stores)
    weekday = np.arange(n_days) % 7  # 2024-07-01 was a Monday
    lift = np.where(weekday >= 5, 1.25, 1.0)
    others = (base[:, None] * lift[None, :] * w.rng.lognormal(-0.03, 0.25, (n_stores, n_days))).ravel()
    w.frame("store_sales_df", pd.DataFrame({
        "store_id": np.repeat(stores.ids, n_days),
        "day": np.tile(timestamps(np.arange(n_days, dtype=float)), n_stores).astype("datetime64[s]"),
        "sales": np.round(member + others, 2), "orders": receipts + np.round(others / 150).astype(int)}))
    w.write("store_sales.csv", """
        SELECT store_id, strftime(day, '%Y-%m-%d') AS day, printf('%.2f', sales) AS sales, orders
        FROM store_sales_df ORDER BY store_id, day""")
