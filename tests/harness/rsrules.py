"""rsrules.py - what a Redshift cluster refuses, for the stand-in (rsfake.py).

rsfake answers the wire protocol; this module says which statements a real
cluster would refuse, read from the Amazon Redshift Database Developer Guide
(https://docs.aws.amazon.com/redshift/latest/dg/).  Every rule names the page
it comes from.  It is not a SQL parser: it tokenizes (strings, quoted
identifiers, comments and numbers kept whole) and looks for the shapes the
pages forbid, which is enough to stop our own SQL from drifting into
PostgreSQL-only territory before it meets a cluster.

    refusal("SET extra_float_digits = 3")  -> ("22023", "3 is outside ...")
    refusal("SELECT 1")                    -> None
    refusal("TRUNCATE t", in_transaction=True) -> ("25001", "TRUNCATE ...")

A query text may hold several statements separated by ';' (the simple query
protocol): each is checked, the first refusal wins.  Error texts are
Redshift's where the page quotes one, else PostgreSQL's (Redshift's leader
node is PostgreSQL 8.0.2 and answers in its words); the SQLSTATE is the one
PostgreSQL uses for that kind of error.

Standard library only.
"""
import re

DOCS = "https://docs.aws.amazon.com/redshift/latest/dg/"

# ---- tokens ----------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<comment>--[^\n]*|/\*.*?\*/)
  | (?P<string>'(?:[^']|'')*')
  | (?P<qident>"(?:[^"]|"")*")
  | (?P<number>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)
  | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<op>::|<>|<=|>=|!=|\|\||[-+*/%=<>(),;.\[\]{}:$])
""", re.S | re.X)


class Tok:
    __slots__ = ("kind", "text", "up")

    def __init__(self, kind, text):
        self.kind, self.text = kind, text
        self.up = text.upper() if kind == "word" else text

    def __repr__(self):
        return "%s:%s" % (self.kind, self.text)


def tokens(sql):
    out, i = [], 0
    while i < len(sql):
        m = _TOKEN.match(sql, i)
        if not m:  # a character no rule knows: keep it as an operator
            out.append(Tok("op", sql[i]))
            i += 1
            continue
        i = m.end()
        if m.lastgroup not in ("space", "comment"):
            out.append(Tok(m.lastgroup, m.group()))
    return out


def statements(sql):
    """The statements of one query text, as token lists (';' splits)."""
    out, cur = [], []
    for t in tokens(sql):
        if t.kind == "op" and t.text == ";":
            if cur:
                out.append(cur)
            cur = []
        else:
            cur.append(t)
    if cur:
        out.append(cur)
    return out


def _words(toks):
    return [t.up if t.kind == "word" else t.text for t in toks]


def _find(seq, pattern, start=0):
    """Index in seq where the list pattern (None matches anything) starts."""
    n = len(pattern)
    for i in range(start, len(seq) - n + 1):
        if all(p is None or seq[i + k] == p for k, p in enumerate(pattern)):
            return i
    return -1


def _unquote(t):
    if t.kind == "string":
        return t.text[1:-1].replace("''", "'")
    return t.text


# ---- "Reserved words" (r_pg_keywords.html) -----------------------------------

RESERVED = frozenset("""
AES128 AES256 ALL ALLOWOVERWRITE ANALYSE ANALYZE AND ANY ARRAY AS ASC AUTHORIZATION AZ64
BACKUP BETWEEN BINARY BLANKSASNULL BOTH BYTEDICT BZIP2 CASE CAST CHECK COLLATE COLUMN
CONSTRAINT CREATE CREDENTIALS CROSS CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP
CURRENT_USER CURRENT_USER_ID DEFAULT DEFERRABLE DEFLATE DEFRAG DELTA DELTA32K DESC DISABLE
DISTINCT DO ELSE EMPTYASNULL ENABLE ENCODE ENCRYPT ENCRYPTION END EXCEPT EXPLICIT FALSE FOR
FOREIGN FREEZE FROM FULL GLOBALDICT256 GLOBALDICT64K GRANT GROUP GZIP HAVING IDENTITY IGNORE
ILIKE IN INITIALLY INNER INTERSECT INTERVAL INTO IS ISNULL JOIN LEADING LEFT LIKE LIMIT
LOCALTIME LOCALTIMESTAMP LUN LUNS LZO LZOP MINUS MOSTLY16 MOSTLY32 MOSTLY8 NATURAL NEW NOT
NOTNULL NULL NULLS OFF OFFLINE OFFSET OID OLD ON ONLY OPEN OR ORDER OUTER OVERLAPS PARALLEL
PARTITION PERCENT PERMISSIONS PIVOT PLACING PRIMARY RAW READRATIO RECOVER REFERENCES
REJECTLOG RESORT RESPECT RESTORE RIGHT SELECT SESSION_USER SIMILAR SNAPSHOT SOME SYSDATE
SYSTEM TABLE TAG TDES TEXT255 TEXT32K THEN TIMESTAMP TO TOP TRAILING TRUE TRUNCATECOLUMNS
UNION UNIQUE UNNEST UNPIVOT USER USING VERBOSE WALLET WHEN WHERE WITH WITHOUT
""".split())

# "Unsupported PostgreSQL features" (c_unsupported-postgresql-features.html):
# "the following PostgreSQL system column names cannot be used as names of
# user-defined columns".
SYSTEM_COLUMNS = frozenset("OID TABLEOID XMIN CMIN XMAX CMAX CTID".split())


def _syntax_error(word):
    return ("42601", 'syntax error at or near "%s"' % word)


# Where an identifier stands: after these words (CREATE TABLE t, FROM t,
# JOIN t, INTO t, UPDATE t, AS alias), and the first word of a column
# definition in CREATE TABLE.
_NAME_AFTER = {"TABLE", "FROM", "JOIN", "INTO", "UPDATE", "AS"}
# ...unless the word there is itself syntax: CREATE TABLE IF NOT EXISTS,
# FROM (subquery), CAST(x AS INTEGER), DELETE FROM ONLY t.
_TYPES = {"SMALLINT", "INTEGER", "INT", "INT2", "INT4", "INT8", "BIGINT", "DECIMAL", "NUMERIC",
          "REAL", "FLOAT", "FLOAT4", "FLOAT8", "DOUBLE", "BOOLEAN", "BOOL", "CHAR", "CHARACTER",
          "VARCHAR", "NCHAR", "NVARCHAR", "TEXT", "BPCHAR", "DATE", "TIME", "TIMETZ",
          "TIMESTAMP", "TIMESTAMPTZ", "INTERVAL", "VARBYTE", "SUPER", "GEOMETRY", "GEOGRAPHY",
          "HLLSKETCH"}


def reserved_identifier(toks):
    """'Reserved words': a reserved word used as a bare (unquoted) name."""
    w = _words(toks)
    for i, t in enumerate(toks[:-1]):
        nxt = toks[i + 1]
        if nxt.kind != "word" or nxt.up not in RESERVED:
            continue
        if t.kind == "word" and t.up in _NAME_AFTER:
            if t.up == "AS" and (nxt.up in _TYPES or _in_cast(w, i)):
                continue  # CAST(x AS TIMESTAMP)
            if t.up == "AS" and nxt.up in ("SELECT", "WITH", "IDENTITY"):
                continue  # CREATE TABLE t AS SELECT; GENERATED BY DEFAULT AS IDENTITY
            if t.up == "TABLE" and nxt.up in ("IF",):
                continue
            if t.up == "FROM" and nxt.up in ("SELECT",):
                continue
            return _syntax_error(nxt.text)
    # a bare name in a SELECT list (SELECT a, tag FROM ...) or in the column
    # list of INSERT INTO t (a, tag): a reserved word there is a syntax error
    r = _reserved_in_lists(toks)
    if r:
        return r
    # column definitions of CREATE TABLE name ( col type, ... )
    if w[:2] == ["CREATE", "TABLE"] or w[:3] in (["CREATE", "TEMP", "TABLE"],
                                                  ["CREATE", "TEMPORARY", "TABLE"]):
        for name in _column_names(toks):
            if name.kind == "word" and name.up in RESERVED:
                return _syntax_error(name.text)
            if name.up in SYSTEM_COLUMNS or (name.kind == "qident"
                                             and name.text[1:-1].upper() in SYSTEM_COLUMNS):
                return ("42701", 'column name "%s" conflicts with a system column name'
                        % name.text.strip('"').lower())
    return None


# Reserved words that stand for values, or close an expression, where a
# SELECT list item may be: not names.
_VALUE_WORDS = {"NULL", "TRUE", "FALSE", "CURRENT_DATE", "CURRENT_TIME", "CURRENT_TIMESTAMP",
                "CURRENT_USER", "CURRENT_USER_ID", "SESSION_USER", "USER", "SYSDATE",
                "LOCALTIME", "LOCALTIMESTAMP", "DEFAULT", "END"}


def _reserved_in_lists(toks):
    n = len(toks)
    for i, t in enumerate(toks):
        if t.kind != "word" or t.up not in RESERVED or t.up in _VALUE_WORDS:
            continue
        prev = toks[i - 1] if i > 0 else None
        nxt = toks[i + 1] if i + 1 < n else None
        if prev is None or not (prev.text == "," or prev.up == "SELECT"):
            continue
        if nxt is not None and not (nxt.text in (",", ")") or nxt.up == "FROM"):
            continue
        # inside INSERT INTO t ( ... ) or a SELECT list
        if nxt is not None and nxt.text == ")" and not _in_insert_columns(toks, i):
            continue
        return _syntax_error(t.text)
    return None


def _in_insert_columns(toks, i):
    """Is toks[i] inside the parenthesized column list of INSERT INTO t (...)?"""
    depth = 0
    for j in range(i - 1, -1, -1):
        if toks[j].text == ")":
            depth += 1
        elif toks[j].text == "(":
            if depth == 0:
                return j >= 3 and toks[j - 2].up == "INTO" and toks[j - 3].up == "INSERT"
            depth -= 1
    return False


def _in_cast(w, i):
    """Is the AS at w[i] inside CAST( ... )?"""
    depth = 0
    for j in range(i - 1, -1, -1):
        if w[j] == ")":
            depth += 1
        elif w[j] == "(":
            if depth == 0:
                return j > 0 and w[j - 1] in ("CAST", "CONVERT")
            depth -= 1
    return False


_TABLE_CONSTRAINTS = {"PRIMARY", "UNIQUE", "FOREIGN", "CONSTRAINT", "CHECK", "LIKE", "EXCLUDE"}


def _column_names(toks):
    """First token of each top-level element of CREATE TABLE's (...)."""
    try:
        start = next(i for i, t in enumerate(toks) if t.text == "(")
    except StopIteration:
        return []
    if any(t.up == "AS" for t in toks[:start]):
        return []
    names, depth, expect = [], 0, True
    for t in toks[start + 1:]:
        if t.text == "(":
            depth += 1
        elif t.text == ")":
            if depth == 0:
                break
            depth -= 1
        elif t.text == "," and depth == 0:
            expect = True
            continue
        if expect and depth == 0:
            if not (t.kind == "word" and t.up in _TABLE_CONSTRAINTS):
                names.append(t)
            expect = False
    return names


# ---- "Configuration reference" (cm_chap_ConfigurationRef.html) --------------


def _set_extra_float_digits(value):
    # "extra_float_digits" (r_extra_float_digits.html): "0, -15 to 2".
    try:
        n = int(value)
    except ValueError:
        return ("22P02", 'invalid value for parameter "extra_float_digits": "%s"' % value)
    if not -15 <= n <= 2:
        return ("22023", '%d is outside the valid range for parameter "extra_float_digits" '
                "(-15 .. 2)" % n)
    return None


_DATESTYLE_FORMATS = {"ISO", "POSTGRES", "SQL", "GERMAN"}
_DATESTYLE_ORDERS = {"DMY", "MDY", "YMD"}


def _set_datestyle(value):
    # "datestyle" (r_datestyle.html): "Format specification (ISO, Postgres,
    # SQL, or German), and year/month/day ordering (DMY, MDY, YMD)."
    parts = [p.strip().upper() for p in value.split(",")]
    formats = [p for p in parts if p in _DATESTYLE_FORMATS]
    orders = [p for p in parts if p in _DATESTYLE_ORDERS]
    bad = [p for p in parts if p not in _DATESTYLE_FORMATS | _DATESTYLE_ORDERS]
    if bad or len(formats) > 1 or len(orders) > 1 or not parts:
        return ("22023", 'invalid value for parameter "DateStyle": "%s"' % value)
    return None


_TZ_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$")
_TZ_OFFSET = re.compile(r"^[+-]?\d{1,2}(:\d{2})?$")
# "timezone" (r_timezone_config.html): "Because time zone abbreviations, such
# as PST or PDT, are defined as a fixed offset from UTC and don't include
# daylight savings time rules, the SET command doesn't support time zone
# abbreviations."  The page's own examples of names that are also
# abbreviations (EST, MST, NZ, UCT) are names, and UTC is the default.
_TZ_ABBREVIATIONS = {"PST", "PDT", "CST", "CDT", "MDT", "EDT", "AKST", "AKDT", "HST", "BST",
                     "CEST", "IST", "JST", "AEST", "AEDT", "ACST", "AWST", "NZST", "NZDT",
                     "SAST", "WAT", "EAT", "KST", "HKT", "SGT"}


def _set_timezone(value):
    v = value.strip()
    if v.upper() in _TZ_ABBREVIATIONS:
        return ("22023", 'invalid value for parameter "TimeZone": "%s"' % value)
    if _TZ_NAME.match(v) or _TZ_OFFSET.match(v):
        return None
    return ("22023", 'invalid value for parameter "TimeZone": "%s"' % value)


def _set_statement_timeout(value):
    # "statement_timeout" (r_statement_timeout.html): "0 (turns off
    # limitation), x milliseconds".
    if not re.fullmatch(r"\d+", value.strip()):
        return ("22023", 'invalid value for parameter "statement_timeout": "%s"' % value)
    return None


def _set_query_group(value):
    # "query_group" (r_query_group.html): "No default; the value can be any
    # character string."
    return None


_SCHEMA = re.compile(r'^(\$user|"[^"]+"|[A-Za-z_][A-Za-z0-9_$]*)$')


def _set_search_path(value):
    # "search_path" (r_search_path.html): "A comma-separated list of
    # existing schema names"; '$user' is the session user's schema.
    for part in value.split(","):
        p = part.strip().strip("'")
        if not _SCHEMA.match(p):
            return ("22023", 'invalid value for parameter "search_path": "%s"' % value)
    return None


def _set_any(value):
    return None


# The parameters of the "Configuration reference" and what each accepts.
PARAMETERS = {
    "analyze_threshold_percent": _set_any,
    "cast_super_null_on_error": _set_any,
    "datashare_break_glass_session_var": _set_any,
    "datestyle": _set_datestyle,
    "default_geometry_encoding": _set_any,
    "describe_field_name_in_uppercase": _set_any,
    "downcase_delimited_identifier": _set_any,
    "enable_case_sensitive_identifier": _set_any,
    "enable_case_sensitive_super_attribute": _set_any,
    "enable_numeric_rounding": _set_any,
    "enable_result_cache_for_session": _set_any,
    "enable_vacuum_boost": _set_any,
    "error_on_nondeterministic_update": _set_any,
    "extra_float_digits": _set_extra_float_digits,
    "interval_forbid_composite_literals": _set_any,
    "json_parse_dedup_attributes": _set_any,
    "json_serialization_enable": _set_any,
    "json_serialization_parse_nested_strings": _set_any,
    "max_concurrency_scaling_clusters": _set_any,
    "max_cursor_result_set_size": _set_any,
    "mv_enable_aqmv_for_session": _set_any,
    "navigate_super_null_on_error": _set_any,
    "parse_super_null_on_error": _set_any,
    "pg_federation_repeatable_read": _set_any,
    "query_group": _set_query_group,
    "search_path": _set_search_path,
    "spectrum_query_maxerror": _set_any,
    "statement_timeout": _set_statement_timeout,
    "stored_proc_log_min_messages": _set_any,
    "timezone": _set_timezone,
    "use_fips_ssl": _set_any,
    "wlm_query_slot_count": _set_any,
}


def set_parameter(toks):
    """SET [SESSION|LOCAL] name {TO|=} value[, ...] | SET TIME ZONE value."""
    w = _words(toks)
    i = 1
    if len(w) > i and w[i] in ("SESSION", "LOCAL"):
        i += 1
    if w[i:i + 2] == ["TIME", "ZONE"]:
        name, rest = "timezone", toks[i + 2:]
    else:
        if len(toks) <= i:
            return _syntax_error("SET")
        name = toks[i].text.strip('"').lower()
        rest = toks[i + 1:]
        if rest and rest[0].text in ("=",) or (rest and rest[0].up == "TO"):
            rest = rest[1:]
        else:
            return _syntax_error(rest[0].text if rest else name)
    if name == "session" and w[:3] == ["SET", "SESSION", "AUTHORIZATION"]:
        return None
    check = PARAMETERS.get(name)
    if check is None:
        return ("42704", 'unrecognized configuration parameter "%s"' % name)
    if not rest:
        return _syntax_error(name)
    if rest[0].up == "DEFAULT":
        return None
    # the value: literals and names, strings unquoted, commas kept
    value = "".join("," if t.text == "," else _unquote(t) for t in rest)
    return check(value)


# ---- "Unsupported PostgreSQL features", data types, commands ----------------

_UNSUPPORTED_TYPES = {
    # "Unsupported PostgreSQL data types" (c_unsupported-postgresql-datatypes.html)
    "SERIAL", "BIGSERIAL", "SMALLSERIAL", "MONEY", "BYTEA", "JSON", "JSONB", "UUID", "XML",
    "HSTORE", "BIT", "INET", "CIDR", "MACADDR", "TSVECTOR", "TSQUERY", "TXID_SNAPSHOT",
    "INT4RANGE", "INT8RANGE", "NUMRANGE", "TSRANGE", "TSTZRANGE", "DATERANGE",
}


def _unsupported(what, page):
    return ("0A000", "%s is not supported on Redshift (%s%s)" % (what, DOCS, page))


def unsupported_feature(toks, in_transaction):
    w = _words(toks)
    kinds = [t.kind for t in toks]
    first = w[0] if w else ""
    # "TRUNCATE" (r_TRUNCATE.html): "TRUNCATE commits the transaction in
    # which it is run" -- inside our BEGIN ... COMMIT it would publish a
    # half-done step; refused so that the mistake fails a test.
    if first == "TRUNCATE" and in_transaction:
        return ("25001", "TRUNCATE commits the transaction in which it is run; use DELETE "
                "inside a transaction (%sr_TRUNCATE.html)" % DOCS)
    # "INSERT" (r_INSERT_30.html): no ON CONFLICT clause.
    if first == "INSERT" and _find(w, ["ON", "CONFLICT"]) >= 0:
        return _syntax_error("ON")
    # "Unsupported PostgreSQL features": indexes, tablespaces, inheritance,
    # triggers, table partitioning, sequences, rules, full text search.
    if w[:2] == ["CREATE", "INDEX"] or w[:3] == ["CREATE", "UNIQUE", "INDEX"]:
        return _unsupported("CREATE INDEX", "c_unsupported-postgresql-features.html")
    for pat, what in ((["CREATE", "TRIGGER"], "CREATE TRIGGER"),
                      (["CREATE", "SEQUENCE"], "CREATE SEQUENCE"),
                      (["CREATE", "TABLESPACE"], "CREATE TABLESPACE"),
                      (["CREATE", "RULE"], "CREATE RULE"),
                      (["CREATE", "EXTENSION"], "CREATE EXTENSION")):
        if w[:len(pat)] == pat:
            return _unsupported(what, "c_unsupported-postgresql-features.html")
    if first == "CREATE" and "TABLE" in w[:4]:
        r = _create_table(toks, w)
        if r:
            return r
    # "Unsupported PostgreSQL features", value expressions: "Subscripted
    # expressions, Array constructors, Row constructors"; and arrays among
    # the unsupported data types.
    for i, t in enumerate(toks):
        if t.kind == "op" and t.text == "[":
            return _unsupported("an array subscript or type ([...])",
                                "c_unsupported-postgresql-features.html")
        if t.kind == "word" and t.up == "ARRAY" and i + 1 < len(toks) and \
                toks[i + 1].text in ("[", "("):
            return _unsupported("an ARRAY constructor", "c_unsupported-postgresql-features.html")
        if t.kind == "word" and t.up == "ROW" and i + 1 < len(toks) and toks[i + 1].text == "(":
            return _unsupported("a ROW constructor", "c_unsupported-postgresql-features.html")
        # "Collations": "Amazon Redshift doesn't support locale-specific or
        # user-defined collation sequences" (COLLATE "C", COLLATE "en_US").
        if t.kind == "word" and t.up == "COLLATE" and i + 1 < len(toks) and \
                toks[i + 1].kind == "qident":
            return _unsupported("COLLATE %s" % toks[i + 1].text,
                                "c_unsupported-postgresql-features.html")
        # "Unsupported PostgreSQL data types", also in casts: x::json, CAST(x AS uuid).
        if t.kind == "word" and t.up in _UNSUPPORTED_TYPES and i > 0 and \
                (toks[i - 1].text == "::" or toks[i - 1].up == "AS") and _in_cast_or_colon(toks, i):
            return _unsupported("the data type %s" % t.up, "c_unsupported-postgresql-datatypes.html")
    # "Unsupported PostgreSQL features": "VALUES list used as constant tables".
    for i in range(len(toks) - 2):
        if toks[i].text == "(" and toks[i + 1].up == "VALUES" and kinds[i + 1] == "word":
            return _unsupported("a VALUES list used as a table",
                                "c_unsupported-postgresql-features.html")
    # "WITH clause" (r_WITH_clause.html): a common table expression is a
    # query; data-modifying statements inside WITH are PostgreSQL's.
    if first == "WITH":
        depth = 0
        for i, t in enumerate(toks):
            if t.text == "(":
                depth += 1
                nxt = toks[i + 1] if i + 1 < len(toks) else None
                if nxt and nxt.up in ("INSERT", "UPDATE", "DELETE") and nxt.kind == "word":
                    return _unsupported("%s inside WITH" % nxt.up, "r_WITH_clause.html")
            elif t.text == ")":
                depth -= 1
    # "RETURNING": not in Redshift's INSERT, UPDATE or DELETE.
    if first in ("INSERT", "UPDATE", "DELETE") and "RETURNING" in w:
        return _syntax_error("RETURNING")
    return None


def _in_cast_or_colon(toks, i):
    if toks[i - 1].text == "::":
        return True
    return _in_cast(_words(toks), i - 1)


def _create_table(toks, w):
    """CREATE TABLE: column types, GENERATED columns, LIKE options."""
    page = "r_CREATE_TABLE_NEW.html"
    for i, t in enumerate(toks):
        if t.kind != "word":
            continue
        # "CREATE TABLE": the only generated column is GENERATED BY DEFAULT
        # AS IDENTITY; GENERATED ALWAYS (stored or identity) is PostgreSQL's.
        if t.up == "GENERATED" and i + 1 < len(toks) and toks[i + 1].up == "ALWAYS":
            return _unsupported("GENERATED ALWAYS", page)
        # "CREATE TABLE": LIKE parent_table [ { INCLUDING | EXCLUDING } DEFAULTS ]
        if t.up in ("INCLUDING", "EXCLUDING") and i + 1 < len(toks) and \
                toks[i + 1].up != "DEFAULTS":
            return _unsupported("LIKE ... %s %s" % (t.up, toks[i + 1].up), page)
        if t.up in _UNSUPPORTED_TYPES and i > 0 and \
                (toks[i - 1].kind == "word" or toks[i - 1].kind == "qident"):
            return _unsupported("the data type %s" % t.up, "c_unsupported-postgresql-datatypes.html")
    return None


# ---- the entry point ---------------------------------------------------------


def refusal(sql, in_transaction=False):
    """(sqlstate, message) for the first statement of sql that a Redshift
    cluster refuses, or None.  in_transaction: a BEGIN is open."""
    for toks in statements(sql):
        w = _words(toks)
        if not w:
            continue
        if w[0] in ("BEGIN", "START"):
            in_transaction = True
        elif w[0] in ("COMMIT", "END", "ROLLBACK", "ABORT"):
            in_transaction = False
        if w[0] == "SET":
            r = set_parameter(toks)
        else:
            r = unsupported_feature(toks, in_transaction) or reserved_identifier(toks)
        if r:
            return r
    return None
