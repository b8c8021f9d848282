#!/usr/bin/env python3
"""Expected next fire instants for tests/events/schedule_cron_test.cpp, computed
independently of the C++ engine: a small cron matcher of its own and Python's zoneinfo
(the system's IANA database, like adapters/tz), scanning UTC minute by minute instead of
walking local times. The DST rule (Vixie cron 4.1 / cronie, see events/schedule/cron.hpp):
- an instant t fires when its local time matches and either the schedule is wildcard
  (minute or hour field starts with '*') or t is the first occurrence of that local
  time (fold == 0);
- a fixed-time schedule also fires at a forward transition t when a local minute
  skipped by the jump (strictly between the local time just before t and the local
  time at t) matches.
Run: python3 tests/events/schedule_cron_cases.py > tests/events/schedule_cron_cases.inc
"""
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

MONTHS = "jan feb mar apr may jun jul aug sep oct nov dec".split()
DAYS = "sun mon tue wed thu fri sat".split()
MACROS = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@weekly": "0 0 * * 0",
          "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *"}


def value(tok, names, base):
    if tok.isdigit():
        return int(tok)
    return names.index(tok.lower()) + base


def field(text, lo, hi, names=None, base=0):
    out = set()
    for item in text.split(","):
        rng, _, step = item.partition("/")
        step = int(step) if step else 1
        if rng == "*":
            a, b = lo, hi
        elif "-" in rng:
            x, y = rng.split("-")
            a, b = value(x, names, base), value(y, names, base)
        else:
            a = b = value(rng, names, base)
        out.update(range(a, b + 1, step))
    return out


def parse(expr):
    expr = MACROS.get(expr.lower(), expr)
    f = expr.split()
    dow = field(f[4], 0, 7, DAYS, 0)
    if 7 in dow:
        dow.add(0)
    return dict(minute=field(f[0], 0, 59), hour=field(f[1], 0, 23), dom=field(f[2], 1, 31),
                month=field(f[3], 1, 12, MONTHS, 1), dow=dow, wild=f[0][0] == "*" or f[1][0] == "*",
                dom_star=f[2][0] == "*", dow_star=f[4][0] == "*")


def day_ok(c, d):
    if d.month not in c["month"]:
        return False
    dom = d.day in c["dom"]
    dow = (d.weekday() + 1) % 7 in c["dow"]
    return (dom and dow) if (c["dom_star"] or c["dow_star"]) else (dom or dow)


def matches(c, l):
    return day_ok(c, l) and l.hour in c["hour"] and l.minute in c["minute"]


def every(expr, anchor, after, n):
    d = expr.split()[1]
    secs, num = 0, ""
    for ch in d:
        if ch.isdigit():
            num += ch
        else:
            secs += int(num) * {"h": 3600, "m": 60, "s": 1}[ch]
            num = ""
    k = 1 if after < anchor else (after - anchor) // timedelta(seconds=secs) + 1
    return [anchor + timedelta(seconds=secs * (k + i)) for i in range(n)]


def fires(expr, zone, after, n, anchor=None):
    if expr.startswith("@every"):
        return every(expr, anchor, after, n)
    c, z, out = parse(expr), ZoneInfo(zone), []
    t = after.replace(second=0) + timedelta(minutes=1)
    prev = (t - timedelta(minutes=1)).astimezone(z)
    while len(out) < n:
        loc = t.astimezone(z)
        fire = matches(c, loc) and (c["wild"] or loc.fold == 0)
        if not fire and not c["wild"] and loc.utcoffset() > prev.utcoffset():
            # forward jump at t: local minutes strictly between prev+1min and loc were skipped
            a = prev.replace(tzinfo=None) + timedelta(minutes=1)
            b = loc.replace(tzinfo=None)
            m = a
            while m < b and not fire:
                fire = matches(c, m)
                m += timedelta(minutes=1)
        if fire:
            out.append(t)
        prev, t = loc, t + timedelta(minutes=1)
    return out


def utc(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def z(t):
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


CASES = [
    # Europe/Berlin: spring forward 2026-03-29 01:00Z (02:00 CET -> 03:00 CEST), fall back 2026-10-25 01:00Z
    ("30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", 3),
    ("0 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", 2),
    ("0 3 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", 2),
    ("0 2,3 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", 3),
    ("0 * * * *", "Europe/Berlin", "2026-03-28T23:30:00Z", 4),
    ("*/30 * * * *", "Europe/Berlin", "2026-03-29T00:10:00Z", 4),
    ("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", 3),
    ("15,45 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", 4),
    ("0 * * * *", "Europe/Berlin", "2026-10-24T23:30:00Z", 4),
    ("@hourly", "Europe/Berlin", "2026-10-24T23:30:00Z", 4),
    ("*/20 2 * * *", "Europe/Berlin", "2026-10-24T23:30:00Z", 6),
    ("0 6 * * 1-5", "Europe/Berlin", "2026-03-27T12:00:00Z", 3),
    ("0 0 29 2 *", "Europe/Berlin", "2026-06-01T00:00:00Z", 1),
    ("0 0 1,15 * MON", "Europe/Berlin", "2026-06-01T00:00:00Z", 5),
    # America/New_York: spring forward 2026-03-08 07:00Z (02:00 EST -> 03:00 EDT), fall back 2026-11-01 06:00Z
    ("0 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", 3),
    ("30 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", 2),
    ("*/15 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", 3),
    ("0 * * * *", "America/New_York", "2026-03-08T05:30:00Z", 4),
    ("30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", 3),
    ("59 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", 2),
    ("0 * * * *", "America/New_York", "2026-11-01T04:30:00Z", 4),
    ("*/30 1 * * *", "America/New_York", "2026-11-01T04:45:00Z", 5),
    ("0 9 * * MON-FRI", "America/New_York", "2026-11-01T00:00:00Z", 3),
    ("@monthly", "America/New_York", "2026-01-15T00:00:00Z", 3),
    # Feb 29, the OR rule, steps, names
    ("0 0 29 2 *", "UTC", "2027-01-01T00:00:00Z", 1),
    ("0 0 29 2 *", "UTC", "2028-02-29T00:00:00Z", 1),
    ("0 12 29 2 *", "America/New_York", "2026-03-01T00:00:00Z", 1),
    ("0 0 13 * 5", "UTC", "2026-02-01T00:00:00Z", 6),
    ("0 0 13 * FRI", "UTC", "2026-03-01T00:00:00Z", 3),
    ("0 0 */2 * MON", "UTC", "2026-06-01T00:00:00Z", 3),
    ("0 0 1 * *", "UTC", "2026-01-31T00:00:00Z", 3),
    ("0 0 31 * *", "UTC", "2026-01-31T00:00:00Z", 4),
    ("0 0 * * 7", "UTC", "2026-01-01T00:00:00Z", 2),
    ("0 0 * * 0", "UTC", "2026-01-01T00:00:00Z", 2),
    ("0 0 * * sun", "UTC", "2026-01-01T00:00:00Z", 2),
    ("*/15 * * * *", "UTC", "2026-05-05T10:07:30Z", 5),
    ("5-20/5 * * * *", "UTC", "2026-05-05T10:07:00Z", 5),
    ("0 0-23/6 * * *", "UTC", "2026-05-05T10:07:00Z", 5),
    ("* * * * *", "UTC", "2026-05-05T10:07:59Z", 3),
    ("0 0 1 jan,JUL *", "UTC", "2026-02-01T00:00:00Z", 3),
    ("0 0 1 Jan-mar *", "UTC", "2026-02-15T00:00:00Z", 3),
    ("@yearly", "UTC", "2026-02-01T00:00:00Z", 2),
    ("@weekly", "UTC", "2026-05-05T00:00:00Z", 2),
    ("@daily", "Asia/Kathmandu", "2026-05-05T00:00:00Z", 2),
    ("0 12 * * *", "Asia/Kathmandu", "2026-05-05T00:00:00Z", 2),
    ("30 1 * * *", "Europe/London", "2026-03-28T12:00:00Z", 2),
    # Australia/Lord_Howe: +10:30 -> +11 on 2026-10-04 (02:00 -> 02:30), back on 2026-04-05 (02:00 -> 01:30)
    ("15 2 * * *", "Australia/Lord_Howe", "2026-10-03T00:00:00Z", 2),
    ("*/10 2 * * *", "Australia/Lord_Howe", "2026-10-03T15:00:00Z", 4),
    ("45 1 * * *", "Australia/Lord_Howe", "2026-04-04T00:00:00Z", 2),
    ("*/15 1 * * *", "Australia/Lord_Howe", "2026-04-04T14:00:00Z", 6),
    ("0 2 * * SUN", "Australia/Sydney", "2026-10-01T00:00:00Z", 2),
]

EVERY = [
    ("@every 30s", "2026-05-05T10:00:00Z", "2026-05-05T10:00:00Z", 3),
    ("@every 30s", "2026-05-05T10:00:00Z", "2026-05-05T10:00:45Z", 3),
    ("@every 1h30m", "2026-05-05T10:00:10Z", "2026-05-05T13:00:00Z", 3),
    ("@every 90m", "2026-05-05T10:00:10Z", "2026-05-05T09:00:00Z", 2),
    ("@every 1s", "2026-05-05T10:00:00Z", "2026-05-05T10:00:05Z", 3),
]

if __name__ == "__main__":
    print("// Generated by tests/events/schedule_cron_cases.py (Python zoneinfo); do not edit.")
    for expr, zone, after, n in CASES:
        got = ", ".join('"%s"' % z(t) for t in fires(expr, zone, utc(after), n))
        print('{"%s", "%s", "%s", "", {%s}},' % (expr, zone, after, got))
    for expr, anchor, after, n in EVERY:
        got = ", ".join('"%s"' % z(t) for t in fires(expr, "UTC", utc(after), n, utc(anchor)))
        print('{"%s", "America/New_York", "%s", "%s", {%s}},' % (expr, after, anchor, got))
