"""Identity resolution: many source records, one member view.

The same person shows up as a POS card (with a phone), an online-mall user
(with a phone, written differently) and a mini-program open id (phone
sometimes missing, sometimes bound to a POS card). Records are merged when
they share a normalized phone or carry an explicit link (a bound card).

The merge is the connected components of a graph whose nodes are identities
``(source, source_id)``, phones and existing members, and whose edges are
"this record has this phone", "this record links that id" and "this identity
already belongs to that member". Components are found with
:func:`scipy.sparse.csgraph.connected_components`; everything else runs in
SQL. Only identities that touch the new records are read back from the store.

Member ids
----------
- A component that holds existing members keeps the smallest of their ids;
  the other members are *merged* into it (identities, transactions,
  assignments, coupons, points and scores move to the kept id).
- A new component gets the next id ``M00000001, M00000002, ...`` in the order
  of its earliest join date, then its smallest ``source:source_id``: the same
  records give the same ids whatever the order of the files.
- A record that names crmkit's own ``member_id`` keeps that id.

Member attributes (phone, name, gender, birth date) come from the existing
member row first, then from POS, online and mini-program records in that
order; the join date is the earliest over all records, and the join store and
channel are those of the earliest record.

Members derived from transactions
---------------------------------
``--kind transactions+members`` makes one source record of each id that the
store does not know, from its order lines: joined on the day of its first
line, at that line's store and channel. The *contact columns* of such a
combined export (:data:`CONTACT_FIELDS`: a phone, name, gender or birth date
column, known by the names of a member export or named with ``--map``) are
kept: each field takes the value of the member's most recent line that carries
one (latest order time, then the later row), parsed as a member export parses
it. A phone that is not a valid mobile, or a birth date after the load, is not
taken (the line still loads); a valid phone merges the member with a member of that phone, as in a member export.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..engine.store import Connection
from ..schema import TABLES
from . import validate
from .kinds import IDENTITY_SOURCES, KINDS, Mapping, map_columns
from .sql import scalar

#: Record tables the loader fills before :func:`resolve`.
RECORDS_SQL = (
    "CREATE TEMP TABLE crmkit_records (rec BIGINT, source VARCHAR, source_id VARCHAR, phone VARCHAR, "
    "name VARCHAR, gender VARCHAR, birth_date DATE, join_date DATE, join_store_id VARCHAR, join_channel VARCHAR, "
    "source_file VARCHAR)",
    "CREATE TEMP TABLE crmkit_links (rec BIGINT, source VARCHAR, source_id VARCHAR)",
)

#: Member fields a combined export (``--kind transactions+members``) keeps for the members it creates.
CONTACT_FIELDS = ("phone", "name", "gender", "birth_date")

#: Attribute priority of sources (lower first); the existing member row comes before all.
SOURCE_PRIORITY = {"pos": 1, "online": 2, "miniapp": 3}

#: Record ranks (``rec``) stay below this, so ``priority * _RANK + rec`` orders by priority first.
_RANK = 10**15


@dataclass
class Resolution:
    """What one resolution did: ``records`` source records became ``members`` members."""

    records: int = 0
    members: int = 0
    new_members: int = 0
    merged_members: int = 0


def create_record_tables(con: Connection) -> None:
    for sql in RECORDS_SQL:
        con.execute(sql)


def resolve(con: Connection) -> Resolution:
    """Resolve ``crmkit_records``/``crmkit_links`` into ``members`` and ``member_identities``; empty them."""
    n = scalar(con, "SELECT count(*) FROM crmkit_records")
    if n == 0:
        return Resolution()
    _touched_identities(con)
    _components(con)
    merged = _assign_member_ids(con)
    if merged:
        _merge_members(con)
    _write_identities(con)
    new = _write_members(con)
    members = scalar(con, "SELECT count(DISTINCT member_id) FROM crmkit_rec_member")
    for t in ("crmkit_old", "crmkit_rec_comp", "crmkit_member_comp", "crmkit_existing", "crmkit_comp_id",
              "crmkit_rec_member", "crmkit_merge"):
        con.execute(f"DROP TABLE IF EXISTS {t}")
    con.execute("DELETE FROM crmkit_records")
    con.execute("DELETE FROM crmkit_links")
    return Resolution(records=n, members=members, new_members=new, merged_members=merged)


def _touched_identities(con: Connection) -> None:
    """Existing identities sharing an id or a phone with the new records."""
    con.execute("""
        CREATE TEMP TABLE crmkit_old AS
        SELECT i.source, i.source_id, i.member_id, i.phone FROM member_identities i
        WHERE EXISTS (SELECT 1 FROM crmkit_records r WHERE r.source = i.source AND r.source_id = i.source_id)
           OR EXISTS (SELECT 1 FROM crmkit_links l WHERE l.source = i.source AND l.source_id = i.source_id)
           OR i.phone IN (SELECT phone FROM crmkit_records WHERE phone IS NOT NULL)
           OR i.member_id IN (SELECT source_id FROM crmkit_records WHERE source = 'member_id')""")


def _components(con: Connection) -> None:
    """``crmkit_rec_comp`` (rec, comp) and ``crmkit_member_comp`` (member_id, comp): the connected components.

    Nodes are numbered identities, then phones, then existing members; edges join each record's own
    identity to its phone, its links and its explicit member id, and each touched identity to its
    member and phone.
    """
    con.execute("""
        CREATE TEMP TABLE crmkit_keys AS
        SELECT source, source_id, (row_number() OVER () - 1)::BIGINT AS idx FROM (
            SELECT source, source_id FROM crmkit_records UNION SELECT source, source_id FROM crmkit_links
            UNION SELECT source, source_id FROM crmkit_old)""")
    n_keys = scalar(con, "SELECT count(*) FROM crmkit_keys")
    con.execute(f"""
        CREATE TEMP TABLE crmkit_phones AS
        SELECT phone, {n_keys} + (row_number() OVER () - 1)::BIGINT AS idx FROM (
            SELECT phone FROM crmkit_records WHERE phone IS NOT NULL
            UNION SELECT phone FROM crmkit_old WHERE phone IS NOT NULL)""")
    n_phones = scalar(con, "SELECT count(*) FROM crmkit_phones")
    con.execute(f"""
        CREATE TEMP TABLE crmkit_member_comp AS
        SELECT member_id, {n_keys + n_phones} + (row_number() OVER () - 1)::BIGINT AS idx FROM (
            SELECT member_id FROM crmkit_old UNION SELECT source_id FROM crmkit_records WHERE source = 'member_id')""")
    n = n_keys + n_phones + scalar(con, "SELECT count(*) FROM crmkit_member_comp")
    con.execute("""
        CREATE TEMP TABLE crmkit_rec_comp AS
        SELECT r.rec, k.idx FROM crmkit_records r JOIN crmkit_keys k USING (source, source_id)""")
    edges = con.execute("""
        SELECT rk.idx AS a, p.idx AS b FROM crmkit_records r JOIN crmkit_rec_comp rk USING (rec)
            JOIN crmkit_phones p USING (phone)
        UNION ALL SELECT rk.idx, k.idx FROM crmkit_links l JOIN crmkit_rec_comp rk USING (rec)
            JOIN crmkit_keys k USING (source, source_id)
        UNION ALL SELECT rk.idx, m.idx FROM crmkit_records r JOIN crmkit_rec_comp rk USING (rec)
            JOIN crmkit_member_comp m ON r.source = 'member_id' AND m.member_id = r.source_id
        UNION ALL SELECT k.idx, m.idx FROM crmkit_old o JOIN crmkit_keys k USING (source, source_id)
            JOIN crmkit_member_comp m USING (member_id)
        UNION ALL SELECT k.idx, p.idx FROM crmkit_old o JOIN crmkit_keys k USING (source, source_id)
            JOIN crmkit_phones p USING (phone)""").fetchnumpy()
    a, b = np.asarray(edges["a"], dtype=np.int64), np.asarray(edges["b"], dtype=np.int64)
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    con.register("crmkit_labels", pa.table({"idx": np.arange(n, dtype=np.int64), "comp": labels.astype(np.int64)}))
    for table in ("crmkit_rec_comp", "crmkit_member_comp"):
        con.execute(f"CREATE TEMP TABLE {table}_l AS SELECT t.* EXCLUDE (idx), l.comp FROM {table} t "
                    f"JOIN crmkit_labels l USING (idx)")
        con.execute(f"DROP TABLE {table}")
        con.execute(f"ALTER TABLE {table}_l RENAME TO {table}")
    con.unregister("crmkit_labels")
    for table in ("crmkit_keys", "crmkit_phones"):
        con.execute(f"DROP TABLE {table}")


def _assign_member_ids(con: Connection) -> int:
    """Member id of every component and of every record; returns the number of merged-away members."""
    con.execute("""
        CREATE TEMP TABLE crmkit_existing AS
        SELECT mc.member_id, mc.comp FROM crmkit_member_comp mc
        WHERE mc.member_id IN (SELECT member_id FROM members) OR mc.member_id IN (SELECT member_id FROM crmkit_old)""")
    con.execute("""
        CREATE TEMP TABLE crmkit_comp_id AS
        SELECT comp, coalesce((SELECT min(e.member_id) FROM crmkit_existing e WHERE e.comp = mc.comp),
                              min(mc.member_id)) AS member_id
        FROM crmkit_member_comp mc GROUP BY comp""")
    start = scalar(con, r"""
        SELECT coalesce(max(try_cast(substr(member_id, 2) AS BIGINT)), 0) FROM members
        WHERE regexp_full_match(member_id, 'M[0-9]+')""")
    con.execute(f"""
        INSERT INTO crmkit_comp_id
        SELECT comp, printf('M%08d', {int(start)} + row_number() OVER (ORDER BY first_join NULLS LAST, first_key))
        FROM (SELECT c.comp, min(r.join_date) AS first_join, min(r.source || ':' || r.source_id) AS first_key
              FROM crmkit_records r JOIN crmkit_rec_comp c USING (rec)
              WHERE c.comp NOT IN (SELECT comp FROM crmkit_comp_id) GROUP BY c.comp)""")
    con.execute("""
        CREATE TEMP TABLE crmkit_rec_member AS
        SELECT c.rec, c.comp, ci.member_id FROM crmkit_rec_comp c JOIN crmkit_comp_id ci USING (comp)""")
    con.execute("""
        CREATE TEMP TABLE crmkit_merge AS
        SELECT e.member_id AS old, ci.member_id AS target
        FROM crmkit_existing e JOIN crmkit_comp_id ci USING (comp) WHERE e.member_id <> ci.member_id""")
    return scalar(con, "SELECT count(*) FROM crmkit_merge")


def _merge_members(con: Connection) -> None:
    """Move everything of each merged-away member to the member it was merged into."""
    for table in TABLES.values():
        if "member_id" not in table.names or table.name == "members":
            continue
        name = table.name
        if "member_id" in table.key:
            others = [f'"{k}"' for k in table.key if k != "member_id"]
            part = ", ".join(["coalesce(g.target, t.member_id)"] + others)
            con.execute(f"""
                DELETE FROM "{name}" WHERE rowid IN (
                    SELECT rid FROM (
                        SELECT t.rowid AS rid, row_number() OVER (PARTITION BY {part}
                                                                 ORDER BY g.old IS NOT NULL, t.member_id) AS rn
                        FROM "{name}" t LEFT JOIN crmkit_merge g ON t.member_id = g.old
                        WHERE t.member_id IN (SELECT old FROM crmkit_merge UNION SELECT target FROM crmkit_merge))
                    WHERE rn > 1)""")
        con.execute(f'UPDATE "{name}" SET member_id = g.target FROM crmkit_merge g '
                    f'WHERE "{name}".member_id = g.old')


def _write_identities(con: Connection) -> None:
    """Insert new identities; refresh the phone of identities seen again as records."""
    con.execute("""
        CREATE TEMP TABLE crmkit_ident AS
        SELECT source, source_id, arg_min(member_id, rec) AS member_id,
               arg_min(phone, rec) FILTER (WHERE own AND phone IS NOT NULL) AS phone,
               arg_min(source_file, rec) FILTER (WHERE own) AS source_file
        FROM (SELECT r.source, r.source_id, rm.member_id, r.phone, r.source_file, r.rec, true AS own
              FROM crmkit_records r JOIN crmkit_rec_member rm USING (rec)
              UNION ALL
              SELECT l.source, l.source_id, rm.member_id, NULL, NULL, l.rec, false
              FROM crmkit_links l JOIN crmkit_rec_member rm USING (rec))
        WHERE source <> 'member_id'
        GROUP BY source, source_id""")
    con.execute("""
        UPDATE member_identities SET phone = coalesce(n.phone, member_identities.phone)
        FROM crmkit_ident n JOIN crmkit_old o USING (source, source_id)
        WHERE member_identities.source = n.source AND member_identities.source_id = n.source_id""")
    con.execute("""
        INSERT INTO member_identities (source, source_id, member_id, phone, source_file)
        SELECT n.source, n.source_id, n.member_id, n.phone, n.source_file FROM crmkit_ident n
        WHERE NOT EXISTS (SELECT 1 FROM crmkit_old o WHERE o.source = n.source AND o.source_id = n.source_id)""")
    con.execute("DROP TABLE crmkit_ident")


def _write_members(con: Connection) -> int:
    """Rebuild the member rows of every member the records touched; returns how many are new.

    Candidates are ranked by ``k``: the existing member rows first (the kept id's before the merged ones),
    then the records by source priority and file order.
    """
    prio = "CASE r.source " + " ".join(f"WHEN '{s}' THEN {p}" for s, p in SOURCE_PRIORITY.items()) + " ELSE 9 END"
    con.execute("""
        CREATE TEMP TABLE crmkit_affected AS
        SELECT DISTINCT member_id FROM crmkit_rec_member UNION SELECT old FROM crmkit_merge""")
    con.execute(f"""
        CREATE TEMP TABLE crmkit_candidates AS
        SELECT coalesce(g.target, m.member_id) AS member_id,
               coalesce(try_cast(substr(m.member_id, 2) AS BIGINT), 0) AS k,
               m.phone, m.name, m.gender, m.birth_date, m.join_date, m.join_store_id, m.join_channel
        FROM members m LEFT JOIN crmkit_merge g ON m.member_id = g.old
        WHERE m.member_id IN (SELECT member_id FROM crmkit_affected)
        UNION ALL
        SELECT rm.member_id, {prio} * {_RANK} + r.rec, r.phone, r.name, r.gender, r.birth_date,
               r.join_date, r.join_store_id, r.join_channel
        FROM crmkit_records r JOIN crmkit_rec_member rm USING (rec)""")
    before = scalar(con, "SELECT count(*) FROM members WHERE member_id IN (SELECT member_id FROM crmkit_affected)")
    con.execute("DELETE FROM members WHERE member_id IN (SELECT member_id FROM crmkit_affected)")
    con.execute("""
        INSERT INTO members (member_id, phone, name, gender, birth_date, join_date, join_store_id, join_channel)
        SELECT member_id, phone, name, gender, birth_date, join_date, joined.s, joined.c FROM (
            SELECT member_id, arg_min(phone, k) FILTER (WHERE phone IS NOT NULL) AS phone,
                   arg_min(name, k) FILTER (WHERE name IS NOT NULL) AS name,
                   arg_min(gender, k) FILTER (WHERE gender IS NOT NULL) AS gender,
                   arg_min(birth_date, k) FILTER (WHERE birth_date IS NOT NULL) AS birth_date,
                   min(join_date) AS join_date,
                   arg_min(struct_pack(s := join_store_id, c := join_channel),
                           (coalesce(join_date, DATE '9999-12-31'), k)) AS joined
            FROM crmkit_candidates GROUP BY member_id)""")
    after = scalar(con, "SELECT count(*) FROM members WHERE member_id IN (SELECT member_id FROM crmkit_affected)")
    con.execute("DROP TABLE crmkit_candidates")
    con.execute("DROP TABLE crmkit_affected")
    return after - (before - scalar(con, "SELECT count(*) FROM crmkit_merge"))


def own_identity_sql(fields: list[str], alias: str = "") -> tuple[str, str]:
    """SQL for the source and id of a row's own identity: its first non-empty identity field.

    ``alias`` qualifies the columns (``t`` → ``t."card_no"``).
    """
    col = {f: f'{alias + "." if alias else ""}"{f}"' for f in fields}
    source = "CASE " + " ".join(f"WHEN {col[f]} IS NOT NULL THEN '{IDENTITY_SOURCES[f]}'" for f in fields) + " END"
    return source, "coalesce(" + ", ".join(col.values()) + ")"


def member_sql(fields: list[str], alias: str = "t") -> tuple[str, str]:
    """SQL joins onto table ``alias`` and the expression of the member its row's ids resolve to (NULL if none).

    ``fields`` are the identity fields the rows carry; any known one resolves the row.
    """
    joins, found = [], []
    for i, f in enumerate(fields):
        if f == "member_id":
            joins.append(f'LEFT JOIN members j{i} ON j{i}.member_id = {alias}."member_id"')
        else:
            joins.append(f"LEFT JOIN member_identities j{i} ON j{i}.source = '{IDENTITY_SOURCES[f]}' "
                         f'AND j{i}.source_id = {alias}."{f}"')
        found.append(f"j{i}.member_id")
    return " ".join(joins), (f"coalesce({', '.join(found)})" if found else "NULL")


def contact_columns(headers: list[str], mapping: Mapping, column_map: dict[str, str] | None = None) -> dict[str, int]:
    """The contact columns of a combined export: field → column index, for the :data:`CONTACT_FIELDS` that
    a member export would read from ``headers`` (its names, then ``column_map``) on columns that
    ``mapping`` (the transactions) does not read."""
    members = map_columns(KINDS["members"], headers, column_map)
    taken = set(mapping.columns.values())
    return {f: i for f, i in members.columns.items() if f in CONTACT_FIELDS and i not in taken}


def derived_contacts_sql(contacts: dict[str, int], now: dt.datetime, raw: str = "r",
                         order: str = "(t.order_time, t._row)") -> list[str]:
    """Aggregate SQL for the :data:`CONTACT_FIELDS` of a derived member, in that order (NULL for a field
    without a column): the value of its most recent line (``order``) that carries a valid one, parsed
    from the raw text ``{raw}.c{i}`` as a member export parses it (a birth date after ``now`` is not
    valid)."""
    members = KINDS["members"]
    out = []
    for name in CONTACT_FIELDS:
        if name not in contacts:
            out.append("NULL")
            continue
        f = members.field(name)
        value = validate.finish_sql(f, validate.parse_sql(f, f"{raw}.c{contacts[name]}"))
        if f.no_future:
            value = f"CASE WHEN ({value}) <= DATE '{now.date().isoformat()}' THEN {value} END"
        out.append(f"arg_max({value}, {order}) FILTER (WHERE ({value}) IS NOT NULL)")
    return out
