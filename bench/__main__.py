"""`python -m bench [name ...] [--quick]`: run benchmarks, write bench/results/<name>.md and
put them together in bench/RESULTS.md.

Each benchmark is a module of this package with a `run(quick: bool) -> str` that returns its
section of RESULTS.md (Markdown). `--quick` runs it at a small scale, to check that it works;
quick results are written to bench/results/quick/ and never to RESULTS.md.
"""

import argparse
import importlib
import sys
import time
from datetime import UTC, datetime

from .common import RESULTS_DIR, machine, setup_django

# In the order of RESULTS.md.
BENCHMARKS = [
    "error_list",
    "group_view",
    "overview",
    "ingestion",
    "storm",
    "cleanup",
    "sync_throughput",
    "load",
]


def assemble() -> None:
    sections = []
    for name in BENCHMARKS:
        path = RESULTS_DIR / f"{name}.md"
        if path.exists():
            sections.append(path.read_text().strip())
        else:
            sections.append(f"## {name}\n\nNot run yet: `make bench BENCH={name}`.")
    # The soak run is no comparison with a naive way: `make soak` writes it on its own.
    soak = RESULTS_DIR / "soak.md"
    if soak.exists():
        sections.append(soak.read_text().strip())
    header = (
        "# Benchmark results\n\n"
        "Written by `make bench` (`python -m bench`); each section says when it was run and on "
        "what. Every figure is a measurement of that run; each sits beside the naive way "
        "measured in the same run.\n"
    )
    (RESULTS_DIR.parent / "RESULTS.md").write_text(header + "\n" + "\n\n".join(sections) + "\n")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument(
        "names", nargs="*", metavar="name", help=f"default: all of {', '.join(BENCHMARKS)}"
    )
    parser.add_argument("--quick", action="store_true", help="a small scale, to check it runs")
    args = parser.parse_args(argv)
    names = args.names or BENCHMARKS
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"no benchmark called {', '.join(unknown)}; there are {', '.join(BENCHMARKS)}")
    setup_django()
    where = machine()
    out = RESULTS_DIR / "quick" if args.quick else RESULTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        print(f"{name}:", flush=True)
        start = time.perf_counter()
        module = importlib.import_module(f"bench.{name}")
        body = module.run(quick=args.quick).strip()
        took = time.perf_counter() - start
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        (out / f"{name}.md").write_text(
            f"{body}\n\n_Run {stamp} on {where}; the benchmark took {took:,.0f} s._\n"
        )
        print(f"{name}: done in {took:,.0f} s", flush=True)
    if not args.quick:
        assemble()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
