"""Renders the settings reference files from `shared.settings.SPECS`, so they never drift from the code.

`python -m shared settings-files` rewrites local.settings.sample.json and docs/settings.md, and docs/causes.md
from the cause catalogue (`shared.causes_reference`); a test fails when any of them is out of date.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shared.causes_reference import causes_markdown
from shared.settings import SPECS, sample_values

ROOT = Path(__file__).resolve().parent.parent


def sample_json() -> str:
    values = {"FUNCTIONS_WORKER_RUNTIME": "python", "AzureWebJobsFeatureFlags": "EnableWorkerIndexing"}
    values.update(sample_values())
    return json.dumps({"IsEncrypted": False, "Values": values, "Host": {"LocalHttpPort": 7071}}, indent=2) + "\n"


def settings_markdown() -> str:
    lines = [
        "# Settings",
        "",
        "Every setting is an environment variable (a Function App application setting); all values are strings.",
        "`local.settings.sample.json` lists each with a safe sample value. Invalid settings stop the service with",
        "one error that names every bad key and the expected form, except `TRIAGE_SCAN_SCHEDULE`: the Functions",
        "host reads that one itself, so it must be set, and a bad value stops only the timer (`/api/health` and",
        "the scan report it). Secrets (marked) are never logged, shown by",
        "`/api/health`, written to tickets or to the audit log; in Azure, use Key Vault references for them.",
        "A `TRIAGE_*` key that no setting reads (a misspelling, most likely) is ignored with a warning naming the",
        "closest setting, in the log, in `/api/health` (`unknown_settings`) and in `python -m shared doctor`.",
        "The `AzureWebJobsStorage__*` keys are read in any letter case, as the Functions host reads them.",
        "This file is generated: `python -m shared settings-files`.",
        "",
        "| Setting | Default | Secret | Meaning |",
        "|---|---|---|---|",
    ]
    for spec in SPECS:
        default = f"`{spec.default}`" if spec.default not in (None, "") else "`(empty)`"
        if spec.host_read:  # the host never sees our default
            default = f"none: set it (sample `{spec.sample}`)"
        lines.append(f"| `{spec.env}` | {default} | {'yes' if spec.secret else ''} | "
                     f"{spec.doc.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def write_files(args: Any = None, stdin: Any = None, stdout: Any = None) -> int:
    (ROOT / "local.settings.sample.json").write_text(sample_json())
    (ROOT / "docs" / "settings.md").write_text(settings_markdown())
    (ROOT / "docs" / "causes.md").write_text(causes_markdown())
    return 0
