"""The account settings a cut-off scan read travel in its checkpoint (engine/scan_progress.py): a fresh instance
continuing the round reads no account again, yet a grant it decides is made on evidence read from ARM then."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.core.model import Evidence, ResourceEvidence, RoleAssignmentEvidence
from shared.engine import scan_progress
from shared.engine.checkpoints import CutOff, cut_at
from shared.engine.scan import run_scan
from tests.engine.common import ACCOUNT, OPENAI_USER
from tests.engine.test_rules_resume import World
from tests.support.fakes import fake_runtime

SUBSCRIPTION = "/subscriptions/00000000-0000-0000-0000-0000000000a1/resourceGroups/rg/providers"
ACCOUNTS = [f"{SUBSCRIPTION}/Microsoft.CognitiveServices/accounts/acct-{n}".lower() for n in range(4)]
CALLERS = [f"00000000-0000-4000-8000-{n:012x}" for n in range(4)]


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scan_progress, "CHUNK_PAIRS", 1)  # one caller a chunk


def test_a_fresh_instance_gets_the_cut_runs_account_settings_and_a_grant_still_reads_arm(small_chunks):
    world = World(2, mode="enforce")
    world.traffic(3)
    with pytest.raises(CutOff), cut_at("scan-chunk-handled", 1):  # the first caller handled, the second not
        run_scan(world.rt)
    assert len(world.roles.grants) == 1
    world.clock.advance(minutes=1)
    world.rt = world.runtime()
    calls = len(world.evidence.gather_calls)
    seen: list[dict] = []
    accept = world.evidence.accept_accounts
    world.evidence.accept_accounts = lambda found: (seen.append(dict(found)), accept(found))  # type: ignore
    report = run_scan(world.rt)
    assert report.resumable["resumed"]
    assert [list(found) for found in seen] == [[ACCOUNT.lower()]]  # the checkpoint's account, handed over
    second = (world.callers[1], ACCOUNT.lower())
    # The second caller's evidence was gathered with the handed-over settings, so its grant read ARM again first.
    assert world.gathered(calls) == [second, second]
    assert len(world.roles.grants) == 2


def test_handed_over_account_settings_older_than_the_reuse_limit_are_not_handed_over(small_chunks):
    world = World(2)
    world.traffic(3)
    with pytest.raises(CutOff), cut_at("scan-chunk-handled", 1):
        run_scan(world.rt)
    world.clock.advance(minutes=scan_progress.EVIDENCE_REUSE.total_seconds() / 60 + 1)
    world.rt = world.runtime()
    seen: list[dict] = []
    world.evidence.accept_accounts = seen.append  # type: ignore[method-assign]
    run_scan(world.rt)
    assert seen == []


# ---- the record's codec -----------------------------------------------------------------------------------

def _settings(account: int, version: int) -> ResourceEvidence:
    """An account's settings as one read found them: another version is another read (e.g. a network change)."""
    return ResourceEvidence(ACCOUNTS[account], kind="OpenAI", disable_local_auth=version % 2 == 0,
                            ip_rules=("1.2.3.4",) * (version % 2), private_endpoints=version)


def _evidence(resource: ResourceEvidence | None, caller: str, failed: bool, held: bool) -> Evidence:
    assignments = (RoleAssignmentEvidence(OPENAI_USER, resource.resource_id if resource else ACCOUNTS[0],
                                          principal_id=caller),) if held else ()
    return Evidence(assignments=assignments, resource=resource, principal_type="ServicePrincipal",
                    failed=("role assignments: 503",) if failed else ())


# A chunk: the version of each account's settings its reads found, and its pairs (caller, account or None: the
# account could not be read, degraded or not, whether the caller holds a role).
_chunk = st.tuples(st.lists(st.integers(0, 2), min_size=len(ACCOUNTS), max_size=len(ACCOUNTS)),
                   st.lists(st.tuples(st.sampled_from(CALLERS), st.one_of(st.none(), st.integers(0, 3)),
                                      st.booleans(), st.booleans()), min_size=1, max_size=6))


@settings(max_examples=60, deadline=None)
@given(chunks=st.lists(_chunk, min_size=1, max_size=4))
def test_a_rounds_records_read_back_as_the_evidence_and_account_settings_they_held(chunks):
    """Whatever chunks record (accounts shared across them, read again with other settings, pairs whose evidence
    is degraded), loading the round gives each complete pair's last evidence and each account's last settings,
    with the time of the chunk that read them."""
    rt = fake_runtime()
    try:
        start = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
        window = scan_progress.SourceWindow(start, start + timedelta(minutes=5), None)
        progress = scan_progress.RoundProgress("round-1", {"source": window})
        expected: dict = {}
        accounts: dict = {}
        for n, (versions, pairs) in enumerate(chunks):
            read_at = start + timedelta(minutes=n)
            evidence = {}
            for caller, account, failed, held in pairs:
                resource = _settings(account, versions[account]) if account is not None else None
                evidence[(caller, ACCOUNTS[account or 0])] = _evidence(resource, caller, failed, held)
            for pair, found in evidence.items():
                if found.complete:
                    expected[pair] = (found, read_at)
                if found.resource is not None and accounts.get(found.resource.resource_id, (None,))[0] != \
                        found.resource:
                    accounts[found.resource.resource_id] = (found.resource, read_at)
            scan_progress.record_chunk(rt, progress, [f"group-{n}"], evidence, read_at)
        loaded = scan_progress.load(rt)
        assert loaded is not None and loaded.resumed and loaded.chunks == len(chunks)
        assert loaded.evidence == expected
        assert loaded.accounts == progress.accounts
        assert loaded.accounts == accounts
        assert loaded.reusable_accounts(start) == {a: s for a, (s, _) in accounts.items()}
    finally:
        rt.close()
