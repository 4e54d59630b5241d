#!/usr/bin/env python3
"""Write a SIPp injection file of N users for register_load.xml.

    sipp-scenarios/gen_users_csv.py N [--prefix user] [--password secret|--per-user-password] > users.csv

Line 1 is SEQUENTIAL; then one "user;password" per line: user00001;secret ...
With --per-user-password each user gets its own password (pw-<user>).
The same users can be created in dialtone with
    bench/register_load.sh ... --provision-dialtone CONFIG
"""
import argparse
import sys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("count", type=int)
    ap.add_argument("--prefix", default="user")
    ap.add_argument("--password", default="secret")
    ap.add_argument("--per-user-password", action="store_true")
    a = ap.parse_args()
    if a.count < 1 or a.count > 10_000_000:
        ap.error("count must be 1..10000000")
    width = max(5, len(str(a.count)))
    out = sys.stdout
    out.write("SEQUENTIAL\n")
    for i in range(1, a.count + 1):
        user = f"{a.prefix}{i:0{width}d}"
        pw = f"pw-{user}" if a.per_user_password else a.password
        out.write(f"{user};{pw}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
