"""Credit notes: returns under their own number linked to the order they cancel.

Many exports (the UK online retailer's, SAP-style tills) cancel an order with a
*credit note*: a document with its own number (``C536379``) whose lines carry
the items of the original order with negative quantity and amount. Without a
link, the original order still counts as a purchase. After every load with
transactions, :func:`link` records, in ``transactions.ref_order_id``, the order
each credit-note line reverses, and :mod:`crmkit.rfm` and
:mod:`crmkit.lifecycle` net it against that order.

The rule
--------
A *credit-note line* is a return line (``txn_type = 'return'``) whose
``order_id`` has no sale line of the same member: a return that carries the
original order's number is netted by that number already and is left alone.
It *reverses* a sale line when both are of the same member and

- the same ``sku``, and the opposite ``quantity`` (neither NULL);
- the opposite ``amount`` (to the cent);
- the sale was rung up at most :data:`WINDOW_DAYS` (90) days before the
  credit note, and not after it.

Of several such sale lines, the latest (then the greatest order number) is
linked. Each sale line is reversed at most once: when two credit-note lines
want the same sale line, the earlier credit note gets it and the other tries
the next latest one, until nothing changes. Links are never undone; a credit
note loaded before its original order is linked by the load that brings the
order.

An order whose lines are all reversed nets to zero and is no purchase; a partly
reversed order keeps the value of its remaining lines. A credit-note line that
reverses no sale line (no match, or the order is older than the window or not
in the store) stays a return of its own number: it lowers the member's revenue
on its day and cancels no purchase.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..engine.store import Connection


#: How far back, in days before the credit note, the reversed order may lie.
WINDOW_DAYS = 90


@dataclass
class CreditNotes:
    """What :func:`link` did: ``linked`` and the order counts cover the links made by this call,
    ``unlinked`` the whole store after it."""

    linked: int = 0  #: credit-note lines linked to the order they reverse, by this call
    cancelled_orders: int = 0  #: orders those links cancel in full (net below half a cent)
    partly_cancelled_orders: int = 0  #: orders those links cancel in part
    unlinked: int = 0  #: credit-note lines in the store that reverse no order

    def to_dict(self) -> dict:
        return {"linked": self.linked, "cancelled_orders": self.cancelled_orders,
                "partly_cancelled_orders": self.partly_cancelled_orders, "unlinked": self.unlinked,
                "window_days": WINDOW_DAYS}

    def sentence(self) -> str:
        """One sentence for the load summary."""
        return (f"Credit notes: {self.linked:,} lines linked to the order they reverse (same member, product, "
                f"opposite quantity and amount, up to {WINDOW_DAYS} days before): {self.cancelled_orders:,} "
                f"orders cancelled in full, {self.partly_cancelled_orders:,} in part; {self.unlinked:,} "
                f"credit-note lines reverse no order and stay returns.")


_CREDIT_LINES = """
    SELECT c.rowid AS c_row, c.member_id, c.order_id, c.order_time, c.sku, c.quantity, c.amount
    FROM transactions c
    WHERE c.txn_type = 'return' AND c.ref_order_id IS NULL AND c.member_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM transactions s WHERE s.order_id = c.order_id AND s.member_id = c.member_id
                      AND s.txn_type = 'sale')"""


def link(con: Connection) -> CreditNotes:
    """Link every unlinked credit-note line of the store to the sale line it reverses (see the module)."""
    con.execute("ALTER TABLE transactions ADD COLUMN IF NOT EXISTS ref_order_id VARCHAR")
    out = CreditNotes()
    con.execute(f"CREATE OR REPLACE TEMP TABLE crmkit_cn_lines AS {_CREDIT_LINES}")
    lines = con.execute("SELECT count(*) FROM crmkit_cn_lines").fetchone()[0]
    if lines:
        # every candidate pair, ranked per credit-note line: latest sale first
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE crmkit_cn_pairs AS
            SELECT c.c_row, c.order_time AS c_time, s.rowid AS s_row, s.order_id AS s_order,
                   row_number() OVER (PARTITION BY c.c_row ORDER BY s.order_time DESC, s.order_id DESC,
                                      s.line_no DESC NULLS LAST, s.rowid DESC) AS pref
            FROM crmkit_cn_lines c JOIN transactions s
              ON s.member_id = c.member_id AND s.sku = c.sku AND s.quantity = -c.quantity
             AND round(s.amount, 2) = -round(c.amount, 2)
            WHERE s.txn_type = 'sale' AND s.order_id <> c.order_id
              AND s.order_time <= c.order_time AND s.order_time >= c.order_time - INTERVAL {WINDOW_DAYS} DAY""")
        # sale lines reversed by earlier links are taken: per order, product, quantity and amount, as many
        # sale lines as there are credit-note lines linked to it already
        con.execute("""
            CREATE OR REPLACE TEMP TABLE crmkit_cn_taken AS
            SELECT s_row FROM (
                SELECT s.rowid AS s_row, row_number() OVER (PARTITION BY s.member_id, s.order_id, s.sku, s.quantity,
                                                            round(s.amount, 2) ORDER BY s.rowid) AS k, d.n
                FROM transactions s JOIN (
                    SELECT member_id, ref_order_id, sku, quantity, round(amount, 2) AS amount, count(*) AS n
                    FROM transactions WHERE ref_order_id IS NOT NULL GROUP BY ALL) d
                  ON d.member_id = s.member_id AND d.ref_order_id = s.order_id AND d.sku = s.sku
                 AND d.quantity = -s.quantity AND d.amount = -round(s.amount, 2)
                WHERE s.txn_type = 'sale' AND s.rowid IN (SELECT s_row FROM crmkit_cn_pairs))
            WHERE k <= n""")
        con.execute("CREATE OR REPLACE TEMP TABLE crmkit_cn_links (c_row BIGINT, s_row BIGINT, s_order VARCHAR)")
        while True:  # one-to-one: each credit line its best free sale line, the earliest credit note first
            n = con.execute("""
                INSERT INTO crmkit_cn_links
                SELECT c_row, s_row, s_order FROM (
                    SELECT c_row, s_row, s_order, row_number() OVER (PARTITION BY s_row ORDER BY c_time, c_row) AS k
                    FROM (SELECT p.*, row_number() OVER (PARTITION BY p.c_row ORDER BY p.pref) AS r
                          FROM crmkit_cn_pairs p
                          WHERE p.c_row NOT IN (SELECT c_row FROM crmkit_cn_links)
                            AND p.s_row NOT IN (SELECT s_row FROM crmkit_cn_links)
                            AND p.s_row NOT IN (SELECT s_row FROM crmkit_cn_taken))
                    WHERE r = 1)
                WHERE k = 1""").fetchone()[0]
            if not n:
                break
        con.execute("UPDATE transactions SET ref_order_id = l.s_order FROM crmkit_cn_links l "
                    "WHERE transactions.rowid = l.c_row")
        out.linked = con.execute("SELECT count(*) FROM crmkit_cn_links").fetchone()[0]
        if out.linked:
            full, part = con.execute("""
                WITH hit AS (SELECT DISTINCT s.member_id, l.s_order FROM crmkit_cn_links l
                             JOIN transactions s ON s.rowid = l.s_row),
                net AS (SELECT h.member_id, h.s_order, sum(t.amount) AS net FROM hit h JOIN transactions t
                        ON t.member_id = h.member_id AND coalesce(t.ref_order_id, t.order_id) = h.s_order
                        GROUP BY ALL)
                SELECT count(*) FILTER (WHERE net < 0.005), count(*) FILTER (WHERE net >= 0.005) FROM net""").fetchone()
            out.cancelled_orders, out.partly_cancelled_orders = full, part
        for t in ("crmkit_cn_pairs", "crmkit_cn_taken", "crmkit_cn_links"):
            con.execute(f"DROP TABLE {t}")
    con.execute("DROP TABLE crmkit_cn_lines")
    out.unlinked = lines - out.linked  # a link sets the ref_order_id of one of the lines, and changes nothing else
    return out
