"""Unix times as people read them, for any number a stored row holds: a value no date can be (a row written by an
older version, a hand-edited one) is shown as the nearest one that can, never an error on a page or an answer."""

# 0001-01-01 .. 9999-12-31T23:59:59Z is what datetime and time.gmtime format everywhere.
LATEST = 253_402_300_799


def plausible(seconds: float) -> int:
    return min(max(int(seconds), 0), LATEST)
