"""Session queries over a large store: 100,000 sessions and 2,000,000 command spans sent through the
sink (built once, then reused: see query_dataset.py), then the API's latency (median and p90 of
repeated calls) for the sessions list, filtered lists, one session, the stats and command search.

    .venv/bin/python bench/bench_queries.py [--sessions 100000] [--commands 20] [--repeat 30] [--fresh]
                                            [--only sessions|search]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import urllib.parse
import urllib.request

from query_dataset import RARE_WORD, USERS, open_store

FLOOR_MS = 200.0
SEARCH_FLOOR_MS = 300.0  # a word in 0.1% of commands
SEARCH_REGEX_FLOOR_MS = 1000.0


def timed_get(url: str, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=60) as resp:
            resp.read()
        times.append((time.perf_counter() - started) * 1000)
    return times


def search_cases(api) -> list[tuple[str, str, float | None]]:
    """(name, URL, floor in ms or None) for command search: the word in 0.1% of commands, as a
    substring and as a regular expression, with a filter, a text that is nowhere, and page 2."""
    return [
        (f"commands ?q={RARE_WORD} (0.1%)", api("/api/commands", q=RARE_WORD), SEARCH_FLOOR_MS),
        (f"commands ?q=kubectl {RARE_WORD}&regex=1",
         api("/api/commands", q=rf"kubectl\s+{RARE_WORD}\s+pod\s+web-\d+", regex=1),
         SEARCH_REGEX_FLOOR_MS),
        (f"commands ?q={RARE_WORD}&user=", api("/api/commands", q=RARE_WORD, user=USERS[7]), None),
        ("commands ?q=<nowhere>", api("/api/commands", q="DROP DATABASE"), None),
        ("commands ?q=<nowhere>&regex=1", api("/api/commands", q=r"DROP\s+DATABASE", regex=1),
         None),
        ("commands ?q=git (12.5%)", api("/api/commands", q="git"), None),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--commands", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--fresh", action="store_true", help="rebuild the cached store")
    parser.add_argument("--only", choices=("sessions", "search"),
                        help="run only the session queries, or only command search")
    args = parser.parse_args()

    sink, loaded = open_store(args.sessions, args.commands, fresh=args.fresh)
    counts, commands = loaded.sessions, loaded.commands
    print(f"{'reused' if loaded.reused else 'loaded'} {counts:,} sessions and {commands:,} command "
          f"spans: load {loaded.load_s:.1f} s, store {loaded.store_bytes / 2**30:.2f} GiB on disk")
    try:
        sample = sink.sessions(limit=1)[0]

        def api(path: str, **params) -> str:
            query = urllib.parse.urlencode(params)
            return f"{sink.api_url}{path}" + (f"?{query}" if query else "")

        session_cases = [
            ("sessions list (newest 100)", api("/api/sessions", limit=100), FLOOR_MS),
            ("sessions list, user filter", api("/api/sessions", user=USERS[7], limit=100), None),
            ("sessions list, active only", api("/api/sessions", state="active", limit=100), None),
            ("sessions list, last 24h", api("/api/sessions", since="24h", limit=100), None),
            ("one session with commands", api(f"/api/sessions/{sample['session_id']}"), None),
            ("stats (all sessions)", api("/api/stats"), None),
        ]
        cases = ((session_cases if args.only != "search" else [])
                 + (search_cases(api) if args.only != "sessions" else []))
        results = []
        for name, url, floor in cases:
            timed_get(url, 2)  # warm
            times = timed_get(url, args.repeat)
            results.append((name, statistics.median(times), sorted(times)[int(0.9 * len(times)) - 1],
                            floor))
    finally:
        sink.stop()

    print(f"\nAPI latency over {counts:,} sessions / {commands:,} commands "
          f"({args.repeat} calls each, ms)")
    print(f"  {'query':44} {'median':>8} {'p90':>8} {'floor':>8}")
    failed = []
    for name, median, p90, floor in results:
        verdict = "" if floor is None else f"{floor:8.0f}  {floor / median:4.1f}x " + (
            "PASS" if median <= floor else "FAIL")
        print(f"  {name:44} {median:8.1f} {p90:8.1f} {verdict}")
        if floor is not None and median > floor:
            failed.append(name)
    print("\nfloors met (ratio: floor / measured median)" if not failed
          else f"\nbelow the floor: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
