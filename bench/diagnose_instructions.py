"""Instructions per diagnosed signal, counted with callgrind (independent of the machine's load).

    .venv/bin/python -m bench.diagnose_instructions [--corpus uncached|cached] [--signals N] [--warm W]

runs the counted pass (and its baseline, the same run without the pass) under `valgrind --tool=callgrind` and prints
instructions per signal: the difference of the two totals over N. The pass is over N signals of the corpus after
a cold pass over W others of the same corpus (caches cleared first), so the shapes and templates are those a long
pass knows while the per-text caches never hit; `--warm 0` counts a cold pass. Not a metric: a tool for telling
whether a change to the diagnosis path saves work, where wall-clock numbers on a shared machine measure the load.
`--child` is the process valgrind runs.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path


def _child(corpus_name: str, signals: int, warm: int, counted: bool) -> None:
    from bench import diagnose_speed
    from shared.core.diagnose import diagnose

    make = diagnose_speed.uncached_corpus if corpus_name == "uncached" else diagnose_speed.corpus
    cases = make(warm + signals)
    diagnose_speed._clear_caches()
    for signal, evidence, now in cases[:warm]:
        diagnose(signal, evidence, now=now)
    if counted:
        for signal, evidence, now in cases[warm:]:
            diagnose(signal, evidence, now=now)


def _instructions(args: list[str]) -> int:
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "callgrind.out"
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-m",
                        "bench.diagnose_instructions", "--child", *args],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env={**os.environ, "PYTHONHASHSEED": "0"})  # the same dict layouts in both runs
        found = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.MULTILINE)
        if found is None:
            raise RuntimeError("callgrind wrote no total")
        return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", choices=("uncached", "cached"), default="uncached")
    parser.add_argument("--signals", type=int, default=2000)
    parser.add_argument("--warm", type=int, default=2000)
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--skip", action="store_true", help="(child) everything but the counted pass")
    options = parser.parse_args()
    if options.child:
        _child(options.corpus, options.signals, options.warm, not options.skip)
        return
    common = ["--corpus", options.corpus, "--signals", str(options.signals), "--warm", str(options.warm)]
    with_pass = _instructions(common)
    without = _instructions([*common, "--skip"])
    print(f"{options.corpus}: {(with_pass - without) / options.signals:,.0f} instructions per signal "
          f"({options.signals:,} signals after {options.warm:,} warm-up signals)")


if __name__ == "__main__":
    main()
