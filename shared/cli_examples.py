"""The examples each `python -m shared <command> --help` ends with (tests/e2e/test_cli_help.py checks every command
has some and that each names its command)."""

from __future__ import annotations

EXAMPLES: dict[str, tuple[str, ...]] = {
    "classify": (
        "python -m shared classify < failures.jsonl",
        "python -m shared classify --query cause < failures.jsonl",
        "python -m shared classify -o table < failures.jsonl",
    ),
    "diagnose": (
        "python -m shared diagnose --status 401 --code PermissionDenied --object-id <oid> --resource-id <id>",
        "python -m shared diagnose -o json < failure.json",
        "python -m shared diagnose --query fix_command -o tsv < failure.json",
    ),
    "samples": (
        "python -m shared samples",
        "python -m shared samples -o json --query \"[?role_fixable].cause\"",
    ),
    "demo": (
        "python -m shared demo",
        "python -m shared demo --provider jira -o json",
    ),
    "scan": (
        "python -m shared scan",
        "python -m shared scan -o json --query incidents",
        "python -m shared scan --verbose -o none",
    ),
    "sources": (
        "python -m shared sources",
        "python -m shared sources -o tsv --query \"sources[?state=='failed'].name\"",
    ),
    "incidents": (
        "python -m shared incidents",
        "python -m shared incidents --status open -o json",
        "python -m shared incidents show inc-0123abcd",
        "python -m shared incidents show inc-0123abcd --query \"audit[].kind\" -o tsv",
    ),
    "verify": (
        "python -m shared verify",
        "python -m shared verify -o json",
    ),
    "approve": (
        "python -m shared approve inc-0123abcd --show",
        "python -m shared approve inc-0123abcd --fingerprint 1a2b3c4d5e6f   # --by: TRIAGE_ACTOR or az login",
        "python -m shared approve inc-0123abcd --by alex@contoso.com -o json",
    ),
    "revoke": (
        "python -m shared revoke inc-0123abcd --by alex@contoso.com",
    ),
    "revocations": (
        "python -m shared revocations",
        "python -m shared revocations -o tsv --query \"revocations[].id\"",
    ),
    "unrevoke": (
        "python -m shared unrevoke rev-0123abcd --reason \"reviewed with the app owner\"",
    ),
    "suppress": (
        "python -m shared suppress <object-id> --for 7d --reason \"load test\"",
        "python -m shared suppress <account-resource-id> --for 12h --reason migration --by alex@contoso.com",
    ),
    "settings-files": (
        "python -m shared settings-files",
    ),
    "breaker-reset": (
        "python -m shared breaker-reset --by alex@contoso.com",
    ),
    "abac-condition": (
        "python -m shared abac-condition",
        "python -m shared abac-condition -o json --query roleDefinitionIds",
    ),
    "doctor": (
        "python -m shared doctor",
        "python -m shared doctor -o json --query \"checks[?status=='fail']\"",
    ),
    "review": (
        "python -m shared review readiness",
        "python -m shared review readiness -o tsv --query \"readiness[].[account, verdict]\"",
        "python -m shared review access --pre-upgrade -o json",
        "python -m shared review access --account <account-resource-id> --ticket",
        "python -m shared review upgrade --markdown > change-request.md",
        "python -m shared review upgrade -o table --query access_findings",
    ),
}
