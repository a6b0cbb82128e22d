#!/usr/bin/python3
"""Generates the request bodies of the ingest benchmark (bench/run.sh).

    gen.py batch N FILE   a JSON array of N calls (POST .../calls:batch)
    gen.py csv N FILE     a CSV of N rows: phone_number,message_reference,customer

Phone numbers are +1 212 555 XXXX with XXXX cycling through 0000..9999: every
one is a valid US number for libphonenumber, so every call should be accepted.
The output is deterministic, and a file that already has the requested size
and content stamp is kept, so repeated runs do not regenerate 50 MB.
"""
import os
import sys


def phone(i: int) -> str:
    return "+1 212 555 %04d" % (i % 10000)


def write_batch(n: int, f) -> None:
    f.write("[")
    for i in range(n):
        if i:
            f.write(",")
        f.write(
            '{"phone_number":"%s","message_reference":"bench-batch-%d",'
            '"call_parameters":{"customer":"Customer %d"}}' % (phone(i), i, i)
        )
    f.write("]\n")


def write_csv(n: int, f) -> None:
    f.write("phone_number,message_reference,customer\n")
    lines = []
    for i in range(n):
        lines.append("%s,bench-csv-%d,Customer %d\n" % (phone(i), i, i))
        if len(lines) == 10000:
            f.write("".join(lines))
            lines.clear()
    f.write("".join(lines))


def main(argv: list) -> int:
    if len(argv) != 4 or argv[1] not in ("batch", "csv") or not argv[2].isdigit():
        print(__doc__.strip(), file=sys.stderr)
        return 64
    kind, n, path = argv[1], int(argv[2]), argv[3]
    stamp = path + ".stamp"
    want = "%s %d v1\n" % (kind, n)
    if os.path.exists(path) and os.path.exists(stamp):
        with open(stamp) as s:
            if s.read() == want:
                return 0
    tmp = path + ".tmp"
    with open(tmp, "w", buffering=1 << 20) as f:
        (write_batch if kind == "batch" else write_csv)(n, f)
    os.replace(tmp, path)
    with open(stamp, "w") as s:
        s.write(want)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
