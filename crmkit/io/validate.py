"""Parsing and row-level checks, as DuckDB SQL over the text read from an export.

Each field of a kind is parsed by one SQL expression (dates in the usual
Chinese export formats, amounts with ``¥``/thousands separators/full-width
digits, phones with ``+86``/``86`` prefixes, spaces and dashes). A row whose
value cannot be parsed, or is required and missing, or is a date in the
future, gets a *reason* and goes to quarantine; the first reason wins.

Reasons are fixed phrases, so quarantine can be grouped by them:
``missing member id``, ``missing value: <field>``, ``unparseable date: <field>``,
``unparseable number: <field>``, ``invalid phone``, ``unknown value: <field>``,
``future date: <field>``, ``date before 1990: <field>``; kinds add their own
(see :mod:`crmkit.io.load`).

Dates
-----
A value is first *cleaned*: full-width digits made ASCII; a weekday removed
(``星期五``, ``周五``, ``礼拜五``, in brackets or not); ``2018年1月1日`` written
``2018-1-1`` and ``15时05分`` ``15:05``; a half-day marker (``上午``/``下午``,
``早上``/``凌晨`` = AM, ``中午``/``晚上`` = PM, ``AM``/``PM``) removed, and
applied afterwards: PM adds 12 hours to an hour before 12, AM makes 12 o'clock 0.

*Year-first* values (four digits first: ``2024-01-31 08:00``, ``2024/1/31``,
``20240131``, ``2024.01.31``, ``2024年1月31日``) are unambiguous and read as
such. Any other value needs a *day order*, decided once for the whole column
of a file by this **rule** (:func:`decide_dates`): each of month/day/year,
day/month/year, month/day/two-digit year and day/month/two-digit year (with
``/``, ``-`` or ``.``) is tried on every distinct date part (``12/1/10`` of
``12/1/10 8:26``) of the column's values that are not year-first, and counts
the dates it reads as plausible (from :data:`kinds.EARLIEST`, or 1900 for a
birth date, to the load date). The order that reads the most is used, with or
without a time of day; when a month-first and a day-first order read as many
(every day of the column is 12 or less, so ``1/2/10`` may be either), the
column is refused in one sentence naming the file and the column, unless
``--date-format`` says which (``mdy``, ``dmy``, or a strptime format such as
``%d.%m.%y %H:%M``). Two-digit years are 2000-2068 for 00-68 and 1969-1999 for
69-99. The choice, with an example value and what it became, is stated in the
load summary. On a real online retailer's export ("12/1/10 8:26", up to
"12/9/11"), only month/day/two-digit year reads every date: 2010-12-01.

A value the chosen layouts do not read, or read as a year before 1000, is
quarantined (``unparseable date``);
a date after the load time (``future date``), or of an event before
:data:`kinds.EARLIEST` (``date before 1990``), is quarantined as implausible,
not loaded with a warning: such a date is a misread, and it would move a
member's first purchase by decades.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass


from ..engine.store import Connection, EngineError
from ..currency import CURRENCIES, marks
from ..errors import InputError
from .kinds import DERIVATIONS, VOCABULARIES, Field, Mapping
from .sql import lit

#: Year-first layouts tried in order (``%m``/``%d`` also read single digits: ``2024/1/31``), after the
#: column's day order; ``%Y`` also reads ``12`` of ``12/1/10``, so years before 1000 are dropped afterwards.
DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d",
    "%Y%m%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S.%f", "%Y%m%d %H:%M:%S",
    "%Y%m%d%H%M%S", "%Y.%m.%d", "%Y.%m.%d %H:%M:%S", "%Y.%m.%d %H:%M",
)

#: Day orders for values that are not year-first: name → (description, layouts of the date part).
#: Two-digit years come first: ``%Y`` also reads ``10`` (as the year 10), ``%y`` never reads ``2010``.
DAY_ORDERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "m/d/y": ("month/day/two-digit year", ("%m/%d/%y", "%m-%d-%y", "%m.%d.%y")),
    "d/m/y": ("day/month/two-digit year", ("%d/%m/%y", "%d-%m-%y", "%d.%m.%y")),
    "m/d/Y": ("month/day/year", ("%m/%d/%Y", "%m-%d-%Y", "%m.%d.%Y")),
    "d/m/Y": ("day/month/year", ("%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y")),
}
#: ``--date-format`` shorthands → day orders.
DATE_FORMAT_SHORTHANDS = {"mdy": ("m/d/y", "m/d/Y"), "dmy": ("d/m/y", "d/m/Y")}
_TIMES = ("", " %H:%M", " %H:%M:%S", " %H:%M:%S.%f")
_BIRTH_EARLIEST = "1900-01-01"

#: Values that DuckDB's cast reads right: ISO dates with a four-digit year (its cast also takes
#: ``12/1/10`` as year 12, and drops a trailing PM).
_ISO = (r"[0-9]{4}[-/][0-9]{1,2}[-/][0-9]{1,2}([ T][0-9]{1,2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)?"
        r"([+-][0-9]{2}(:?[0-9]{2})?|Z)?")
_WEEKDAY = "[(（]?(星期|周|礼拜)[一二三四五六日天七][)）]?"
_HALF_DAY = "上午|下午|中午|晚上|凌晨|早上|(?i:[ap]\\.?m\\.?)$"
_PM = "(下午|中午|晚上)|(?i:[0-9 ]p\\.?m\\.?\\s*$)"
_AM = "(上午|凌晨|早上)|(?i:[0-9 ]a\\.?m\\.?\\s*$)"

_FULL_WIDTH = "０１２３４５６７８９．，－＋：／　"
_HALF_WIDTH = "0123456789.,-+:/ "
#: Currency marks stripped from amounts: every symbol of :data:`crmkit.currency.CURRENCIES` (longest first, so
#: ``HK$`` goes whole), ``￥``, ``元`` and the full-width comma.
_MONEY_MARKS = ("MOP$", "HK$", "US$", "NT$", "S$", "A$", "C$", "¥", "￥", "元", "£", "€", "₩", "$", "，")


def _list(formats) -> str:
    return "[" + ", ".join(map(lit, formats)) + "]"


def order_formats(order: str) -> tuple[str, ...]:
    """The layouts of a day order (:data:`DAY_ORDERS`), with and without a time of day."""
    return tuple(d + t for d in DAY_ORDERS[order][1] for t in _TIMES)


@dataclass(frozen=True)
class DateRule:
    """How the dates of one column are read: year-first values, then ``formats``; ``text`` says why."""

    formats: tuple[str, ...] = ()
    text: str = "year-first dates"


def clean_date_sql(col: str) -> str:
    """The cleaned text of a date (see the module docstring): ASCII, no weekday, 年月日 and 时分 as - and :,
    no half-day marker, single spaces; NULL when empty."""
    plain = _narrow(col)
    v = f"regexp_replace({plain}, {lit(_WEEKDAY)}, ' ', 'g')"
    v = f"regexp_replace({v}, '([0-9]{{4}})年([0-9]{{1,2}})月([0-9]{{1,2}})日?', '\\1-\\2-\\3 ', 'g')"
    v = f"regexp_replace({v}, '([0-9]{{1,2}})[时点]([0-9]{{1,2}})分([0-9]{{1,2}})秒', '\\1:\\2:\\3', 'g')"
    v = f"regexp_replace({v}, '([0-9]{{1,2}})[时点]([0-9]{{1,2}})分?', '\\1:\\2', 'g')"
    v = f"regexp_replace({v}, {lit(_HALF_DAY)}, ' ', 'g')"
    cleaned = f"nullif(trim(regexp_replace({v}, '\\s+', ' ', 'g')), '')"
    # digits and separators only (12/1/10 8:26): nothing to clean
    return f"CASE WHEN regexp_full_match({plain}, '[0-9][0-9/.:-]* ?[0-9:.]*') THEN {plain} ELSE {cleaned} END"


def _timestamp_sql(col: str, rule: DateRule) -> str:
    """ISO values by DuckDB's cast (the fast path); others cleaned, then read by the rule's day-order layouts
    and the year-first ones, in that order (a day-order layout never reads a year-first value: ``%m`` or
    ``%d`` stops at the third digit of ``2024``). A two-digit year read by a year-first layout (``12/1/10``
    as the year 12) is dropped by :func:`finish_sql`, which keeps years from 1000 only.

    A cleaned value of digits only (``20240131``) is tried with the same layouts less those that hold a
    character no such value has (``-``, ``/``, ``:``): the same result, without a failed try per layout."""
    formats = tuple(rule.formats) + DATE_FORMATS  # %Y%m%d among them: the digit layouts are never none
    value = clean_date_sql(col)
    return (f"CASE WHEN regexp_full_match({col}, {lit(_ISO)}) THEN try_cast({col} AS TIMESTAMP) "
            f"WHEN regexp_full_match({value}, '[0-9]+') THEN try_strptime({value}, {_list(_digit_layouts(formats))}) "
            f"ELSE try_strptime({value}, {_list(formats)}) END")


def _digit_layouts(formats: tuple[str, ...]) -> tuple[str, ...]:
    """The layouts, in order, that may read a value of digits only: those whose characters outside their
    directives (``%Y``, ``%-d``) are all digits or blanks."""
    return tuple(f for f in formats if all(ch.isdigit() or ch.isspace() for ch in re.sub(r"%-?[A-Za-z]", "", f)))


def _half_day_sql(name: str, raw: str) -> str:
    """``name`` (a parsed timestamp) with the half-day marker of ``raw`` applied: PM adds 12 hours to an
    hour before 12, AM makes 12 o'clock 0. Values without a marker (ASCII without an m) pass untouched."""
    return (f"CASE WHEN {name} IS NULL OR hour({name}) > 12 OR (strlen({raw}) = length({raw}) "
            f"AND NOT contains(lower({raw}), 'm')) THEN {name} "
            f"WHEN hour({name}) < 12 AND regexp_matches({raw}, {lit(_PM)}) THEN {name} + INTERVAL 12 HOUR "
            f"WHEN hour({name}) = 12 AND regexp_matches({raw}, {lit(_AM)}) THEN {name} - INTERVAL 12 HOUR "
            f"ELSE {name} END")


def decide_dates(con: Connection, mapping: Mapping, raw: str, headers: list[str],
                 now: dt.datetime, path: str, date_format: str | None = None) -> dict[str, DateRule]:
    """The :class:`DateRule` of every date column of a file, by the rule of the module docstring.

    Raises :class:`InputError` naming the file and the column when two day orders read the column
    equally well and ``date_format`` does not say which, or when ``date_format`` is not a format.
    """
    declared = declared_formats(con, date_format)
    rules = {}
    for f in mapping.kind.fields:
        if f.parse not in ("timestamp", "date") or f.name not in mapping.columns:
            continue
        col = f"c{mapping.columns[f.name]}"
        earliest = f.since or _BIRTH_EARLIEST
        plausible = f"BETWEEN TIMESTAMP '{earliest}' AND TIMESTAMP '{now:%Y-%m-%d %H:%M:%S}'"
        orders = list(DAY_ORDERS)
        # the day order is a matter of the date part: count the distinct date parts (12/1/10) of the values
        # that are not year-first, materialized first (one pass over the column)
        tried = [_list(DAY_ORDERS[o][1]) for o in orders]
        if declared and date_format.strip().lower().replace("/", "").replace("-", "") in DATE_FORMAT_SHORTHANDS:
            tried.append(_list(d for o in DATE_FORMAT_SHORTHANDS[date_format.strip().lower().replace("/", "")
                                                                 .replace("-", "")] for d in DAY_ORDERS[o][1]))
        con.execute(f"CREATE OR REPLACE TEMP TABLE crmkit_dates AS SELECT DISTINCT "
                    f"regexp_extract({clean_date_sql(col)}, '^[^ T]+') AS v "
                    f"FROM {raw} WHERE {col} IS NOT NULL AND NOT regexp_matches({col}, '^\\s*[0-9]{{4}}')")
        counts = con.execute(
            "SELECT count(*), min(v), "
            + ", ".join(f"count(*) FILTER (WHERE try_strptime(v, {fmts}) {plausible})" for fmts in tried)
            + " FROM crmkit_dates WHERE v IS NOT NULL AND v <> '' AND NOT regexp_matches(v, '^[0-9]{4}')"
        ).fetchone()
        con.execute("DROP TABLE crmkit_dates")
        n, example, read = counts[0], counts[1], dict(zip(orders, counts[2:2 + len(orders)]))
        if not n:
            first = con.execute(f"SELECT {col}, strftime({_timestamp_sql(col, DateRule())}, '%Y-%m-%d') FROM {raw} "
                                f"WHERE {col} IS NOT NULL LIMIT 1").fetchone()
            shown = f" ({first[0].strip()} → {first[1]})" if first and first[1] else ""
            rules[f.name] = DateRule((), f"year-first dates{shown}")
            continue
        if declared:
            share = f" (it reads {_share(counts[-1], n)} distinct {_dates(n)} that {_are(n)} not year-first)" \
                if len(tried) > len(orders) else ""
            rules[f.name] = DateRule(declared[1], f"{declared[0]}, as declared with --date-format{share}")
            continue
        best = max(read.values())
        if not best:
            rules[f.name] = DateRule((), f"year-first dates; no day order reads its {n:,} other dates "
                                         f"(such as {example!r}), which are quarantined")
            continue
        winners = [o for o in orders if read[o] == best]
        if len({o[0] for o in winners}) > 1:  # month-first and day-first read as many values
            a, b = (DAY_ORDERS[o][0] for o in winners[:2])
            shown = _ambiguous_example(con, raw, col, winners[:2]) or example
            raise InputError(f"dates such as {shown!r} read both as {a} and as {b}, and no value of the column "
                             f"tells which; pass --date-format mdy or --date-format dmy.", path=path,
                             column=headers[mapping.columns[f.name]])
        formats = tuple(x for o in winners for x in order_formats(o))
        desc = " or ".join(DAY_ORDERS[o][0] for o in winners)
        first = con.execute(f"SELECT v, strftime(try_strptime(v, {_list(formats)}), '%Y-%m-%d') FROM "
                            f"(SELECT {clean_date_sql(col)} AS v FROM {raw} WHERE NOT regexp_matches({col}, "
                            f"'^\\s*[0-9]{{4}}')) WHERE try_strptime(v, {_list(formats)}) IS NOT NULL "
                            f"LIMIT 1").fetchone()
        rest = "" if best == n else f"; the other {n - best:,} are quarantined"
        rules[f.name] = DateRule(formats, f"{desc} ({first[0]} → {first[1]}), the day order that reads the most "
                                          f"dates: {_share(best, n)} distinct {_dates(n)} that {_are(n)} not year-first{rest}")
    return rules


def _share(k: int, n: int) -> str:
    return ("the one" if n == 1 else f"all {n:,}") if k == n else f"{k:,} of {n:,}"


def _dates(n: int) -> str:
    return "date" if n == 1 else "dates"


def _are(n: int) -> str:
    return "is" if n == 1 else "are"


def _ambiguous_example(con: Connection, raw: str, col: str, orders: list[str]) -> str | None:
    """A value that the two day orders read as different dates, e.g. 1/2/10."""
    a, b = (_list(order_formats(o)) for o in orders)
    v = clean_date_sql(col)
    row = con.execute(f"SELECT {v} FROM {raw} WHERE try_strptime({v}, {a}) <> try_strptime({v}, {b}) "
                      f"LIMIT 1").fetchone()
    return row[0] if row else None


def declared_formats(con: Connection, date_format: str | None) -> tuple[str, tuple[str, ...]] | None:
    """``--date-format`` as (description, layouts): a shorthand (mdy, dmy) or one strptime format."""
    if not date_format:
        return None
    key = date_format.strip().lower().replace("/", "").replace("-", "")
    if key in DATE_FORMAT_SHORTHANDS:
        orders = DATE_FORMAT_SHORTHANDS[key]
        return (" or ".join(DAY_ORDERS[o][0] for o in orders),
                tuple(x for o in orders for x in order_formats(o)))
    bad = InputError(f"--date-format {date_format!r} is not a date format; use mdy, dmy, or a strptime format "
                     f"such as %d/%m/%Y %H:%M.")
    if "%" not in date_format:
        raise bad
    try:
        con.execute("SELECT try_strptime('2024-01-31', ?)", [date_format]).fetchone()
    except EngineError:
        raise bad from None
    return date_format, (date_format,)


def _narrow(col: str) -> str:
    """Full-width digits and punctuation as ASCII, trimmed, empty as NULL.

    The translation only runs on values that are not plain ASCII, which keeps it cheap.
    """
    wide = f"translate({col}, '{_FULL_WIDTH}', '{_HALF_WIDTH}')"
    return f"nullif(trim(CASE WHEN strlen({col}) = length({col}) THEN {col} ELSE {wide} END), '')"


def parse_sql(f: Field, col: str, rule: DateRule | None = None) -> str:
    """The SQL expression that parses text column ``col`` as field ``f``: a first step, see :func:`finish_sql`.

    Dates and numbers try a plain cast first; the slower clean-up only runs on values it cannot read.
    ``rule`` is the column's :class:`DateRule` (year-first dates only when None).
    """
    if f.parse in ("timestamp", "date"):
        ts = _timestamp_sql(col, rule or DateRule())
        return f"CAST({ts} AS DATE)" if f.parse == "date" else ts
    if f.parse in ("number", "integer"):
        text = col
        for mark in _MONEY_MARKS:  # removed before the full-width check, so ¥1,299.00 stays on the fast path
            text = f"replace({text}, '{mark}', '')"
        text = _narrow(text)
        for mark in (",", "$", " ", "RMB", *CURRENCIES):  # and ISO codes: 7 USD
            text = f"replace({text}, '{mark}', '')"
        # a CASE, not coalesce: DuckDB evaluates every argument of coalesce on every row, a CASE branch only
        # on the rows that reach it, so plain numbers never run the replacements, and neither does a plain
        # number after one currency sign (¥12.50), which they would only strip
        plain, signed = f"try_cast({col} AS DOUBLE)", f"try_cast(substr({col}, 2) AS DOUBLE)"
        signs = ", ".join(lit(m) for m in _MONEY_MARKS if len(m) == 1 and m != "，")
        return (f"CASE WHEN {plain} IS NOT NULL THEN {plain} "
                f"WHEN left({col}, 1) IN ({signs}) AND {signed} IS NOT NULL THEN {signed} "
                f"ELSE try_cast({text} AS DOUBLE) END")
    if f.parse == "phone":
        # a spreadsheet that saved the number as a float: 13812345678.0, or 1.3812345678E+10 when all
        # eleven digits survive (1.38E+10 lost them and stays invalid)
        # (both hold a dot: the cheap test runs first, so most values never meet these expressions)
        v = _narrow(col)
        return (f"CASE WHEN contains({v}, '.') AND regexp_full_match({v}, '[0-9]+\\.0+') "
                f"THEN regexp_replace({v}, '\\.0+$', '') "
                f"WHEN contains({v}, '.') AND regexp_full_match({v}, '1\\.[0-9]{{10}}[eE]\\+?10') "
                f"THEN CAST(CAST(CAST({v} AS DOUBLE) AS BIGINT) AS VARCHAR) "
                f"ELSE regexp_replace({v}, '[^0-9]', '', 'g') END")
    text = f"nullif(trim({col}), '')"
    if f.parse == "text":
        return text
    if f.parse == "id":  # a numeric card number saved as a float (880010179293.0) is the same card
        return f"CASE WHEN contains({text}, '.') AND regexp_full_match({text}, '[0-9]+\\.0+') " \
               f"THEN regexp_replace({text}, '\\.0+$', '') ELSE {text} END"
    if f.parse in VOCABULARIES:
        return f"lower({text})"
    raise ValueError(f"unknown parser {f.parse!r} for field {f.name}")


def finish_sql(f: Field, name: str, raw: str | None = None) -> str:
    """The second step on the result ``name`` of :func:`parse_sql`: NULL for values that do not qualify.

    ``raw`` is the text as read, for a timestamp's half-day marker (上午/下午, AM/PM).
    """
    if f.parse in ("timestamp", "date"):  # a year before 1000 is a misread (12/1/10 as 0012-01-10)
        sure = f"CASE WHEN year({name}) >= 1000 THEN {name} END"
        return _half_day_sql(sure, raw) if f.parse == "timestamp" and raw is not None else sure
    if f.parse == "number":
        return f"CASE WHEN isfinite({name}) THEN {name} END"
    if f.parse == "integer":
        return f"CASE WHEN {name} = round({name}) AND abs({name}) < 2e9 THEN CAST({name} AS INTEGER) END"
    if f.parse == "phone":  # digits only by now: an 11-digit mainland mobile, after a +86 / 0086 prefix
        local = (f"CASE length({name}) WHEN 11 THEN {name} WHEN 13 THEN CASE WHEN starts_with({name}, '86') "
                 f"THEN substr({name}, 3) END WHEN 15 THEN CASE WHEN starts_with({name}, '0086') "
                 f"THEN substr({name}, 5) END END")
        return f"CASE WHEN regexp_full_match({local}, '1[3-9][0-9]{{9}}') THEN {local} END"
    if f.parse in VOCABULARIES:  # lower-cased by now
        words, strict = VOCABULARIES[f.parse]
        whens = " ".join(f"WHEN {name} IN ({', '.join(lit(w) for w in syn)}) THEN {lit(canon)}"
                         for canon, syn in words.items())
        return f"CASE {whens} ELSE {'NULL' if strict or f.parse == 'gender' else name} END"
    return name


def _bad_reason(f: Field) -> str | None:
    """The reason for a value that is present but does not parse; None when anything goes."""
    if f.parse in ("timestamp", "date"):
        return f"unparseable date: {f.name}"
    if f.parse in ("number", "integer"):
        return f"unparseable number: {f.name}"
    if f.parse == "phone":
        return "invalid phone"
    if f.parse in VOCABULARIES and VOCABULARIES[f.parse][1]:
        return f"unknown value: {f.name}"
    return None


#: Number fields that hold money: a mark of another currency than the store's quarantines the row.
MONEY_FIELDS = frozenset({"amount", "discount", "unit_price", "cost_per_contact", "fixed_cost", "coupon_value",
                          "value", "sales"})


def foreign_money_sql(col: str, code: str) -> str:
    """True when text column ``col`` carries a mark of another currency than ``code``
    (:func:`crmkit.currency.marks`): ``£12`` in a CNY store, ``HK$100`` in a USD one."""
    own, foreign = marks(code)
    text = f"upper({col})"
    for mark in (m for m in own if len(m) > 1):
        text = f"replace({text}, {lit(mark)}, '')"
    # a plain number (most values) carries no mark: the regular expression runs only on the rest
    return (f"(try_cast({col} AS DOUBLE) IS NULL "
            f"AND regexp_matches({text}, {lit('|'.join(re.escape(m) for m in foreign))}))")


def stage(con: Connection, mapping: Mapping, raw: str, out: str, now: dt.datetime,
          dates: dict[str, DateRule] | None = None, currency: str | None = None) -> None:
    """Create temp view ``out``: ``_row``, every field parsed, and ``_reason`` (NULL when the row is good).

    Fields the file does not carry are NULL columns of the right type. A view,
    so that the loader materializes the rows once, with its own checks.
    ``dates`` are the columns' date rules (:func:`decide_dates`).

    A derived field (``mapping.derived``, see :data:`kinds.DERIVATIONS`) is the product of its inputs,
    which are then required: a row without a valid input is quarantined (``missing value: unit_price``).
    A field read only to derive another (``unit_price``) is ignored when that one is not derived.
    """
    dates = dates or {}
    kind = mapping.kind
    inputs = {i for d in mapping.derived for i in DERIVATIONS[d][0]}
    used = {f.name for f in kind.fields if f.name in mapping.columns and (f.derives is None or f.derives in
                                                                          mapping.derived)}
    inner, middle, checks = ["_row"], ["_row"], []
    if mapping.identities:
        checks.append((" AND ".join(f'"{f}" IS NULL' for f in mapping.identities), "missing member id"))
    for f in kind.fields:
        if f.name not in used:
            middle.append(f'CAST(NULL AS {_sql_type(f)}) AS "{f.name}"')
            continue
        col = f"c{mapping.columns[f.name]}"
        inner += [f'{parse_sql(f, col, dates.get(f.name))} AS "{f.name}"', f'{col} AS "_in_{f.name}"']
        middle += [f'{finish_sql(f, chr(34) + f.name + chr(34), chr(34) + "_in_" + f.name + chr(34))} '
                   f'AS "{f.name}"', f'"_in_{f.name}"']
    present = {f.name: f"(\"_in_{f.name}\" IS NOT NULL AND trim(\"_in_{f.name}\") <> '')" for f in kind.fields}
    mapped = [f for f in kind.fields if f.name in used]
    if currency:  # £12 parses, but in a CNY store it is not ¥12
        checks += [(foreign_money_sql(f'"_in_{f.name}"', currency),
                    f"amount in another currency than the store's ({currency}): {f.name}")
                   for f in mapped if f.name in MONEY_FIELDS]
    checks += [(f'"{f.name}" IS NULL AND NOT {present[f.name]}', f"missing value: {f.name}")
               for f in mapped if f.required or f.name in inputs]
    checks += [(f'"{f.name}" IS NULL AND {present[f.name]}', _bad_reason(f)) for f in mapped if _bad_reason(f)]
    for f in mapped:
        if f.no_future:
            limit = f"DATE '{now.date().isoformat()}'" if f.parse == "date" else f"TIMESTAMP '{now:%Y-%m-%d %H:%M:%S}'"
            checks.append((f'"{f.name}" > {limit}', f"future date: {f.name}"))
    for f in mapped:
        if f.since:
            checks.append((f'"{f.name}" < DATE {lit(f.since)}', f"date before {f.since[:4]}: {f.name}"))
    reason = "CASE " + " ".join(f"WHEN {c} THEN {lit(r)}" for c, r in checks) + " END" if checks else "NULL"
    # a derived product is rounded to 6 decimals: 12 × 2.55 is 30.6, not 30.599999999999998
    keep = ", ".join("round(" + " * ".join(f'"{i}"' for i in DERIVATIONS[f.name][0]) + f', 6) AS "{f.name}"'
                     if f.name in mapping.derived else f'"{f.name}"' for f in kind.fields)
    con.execute(f"CREATE TEMP VIEW {out} AS SELECT _row, {keep}, CAST({reason} AS VARCHAR) AS _reason "
                f"FROM (SELECT {', '.join(middle)} FROM (SELECT {', '.join(inner)} FROM {raw}))")


def _sql_type(f: Field) -> str:
    return {"timestamp": "TIMESTAMP", "date": "DATE", "number": "DOUBLE", "integer": "INTEGER"}.get(f.parse, "VARCHAR")
