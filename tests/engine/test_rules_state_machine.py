"""A hypothesis state machine over interleaved scans, failure events, runs that began long before they act,
approvals (with current and stale fingerprints), revocations and their lifting, hand-made role changes and the
clock, on two service instances sharing one store (issue 13, item 9).

After every step, over every ARM write made so far:
- no rolling 24 hours holds more grants than the daily cap, no rolling hour more than the hourly cap, no run more
  than the run cap;
- no grant undoes a revocation in force at its time (same principal, overlapping scope);
- a grant made by an approval is exactly what the approval showed (principal, role, scope), and an approval naming
  a fingerprint other than the one shown grants nothing;
- in enforce mode, the caller that only ever fails through client-side telemetry and untrusted events is granted
  only by an approval.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from shared.core import incidents as inc
from shared.core.events import parse_failure_event
from shared.core.resource_ids import normalize_scope
from shared.core.revocations import scopes_overlap
from shared.engine.approvals import ActionRefused, NotFound, approval_terms, approve, revocations, revoke, unrevoke
from shared.engine.events import handle_event_safely, trusted_topic
from shared.engine.inputs import envelope_of
from shared.engine.runtime import new_correlation_id
from shared.engine.scan import run_scan
from shared.engine.signals import handle_signal
from shared.engine.unit_of_work import RunState
from tests.engine.common import (
    ACCOUNT,
    ALICE,
    BILLING,
    OPERATOR,
    ORDERS,
    SEARCH,
    TRUSTED_TOPIC,
    failure_event,
    topic_failure_event,
)
from tests.engine.conftest import BASE_ENV
from tests.support.fakes import (
    OPENAI_ROUTE,
    FakeEvidence,
    FakeRoleWriter,
    FakeSource,
    ManualClock,
    RecordingSink,
    WriteCountingStore,
    fake_runtime,
    permission_denied,
)

DAY_CAP, HOUR_CAP, RUN_CAP = 3, 2, 2
WITNESSED = (ORDERS, BILLING)  # fail in the service's own logs, or through a trusted topic
UNWITNESSED = SEARCH  # only ever fails through client-side telemetry and untrusted events
ROUTES = {"openai": OPENAI_ROUTE, "models": "/models/chat/completions", "p1": "/api/projects/p1/assistants",
          "p2": "/api/projects/p2/assistants"}


@dataclass(frozen=True)
class Write:
    at: datetime
    principal: str
    role: str
    scope: str
    approval: tuple[str, str, str] | None  # the (principal, role, scope) the approval in progress showed
    run: int | None  # id() of the RunState that made it, when known


class Interleavings(RuleBasedStateMachine):
    runs = Bundle("runs")

    @initialize(mode=st.sampled_from(["enforce", "recommend"]))
    def build(self, mode: str) -> None:
        self.mode = mode
        self.clock = ManualClock()
        self.store = WriteCountingStore()
        self.source = FakeSource(self.clock)
        self.client = FakeSource(self.clock, name="appinsights:fake-workspace")
        self.evidence = FakeEvidence(self.clock)
        self.evidence.add_account(ACCOUNT, kind="AIServices")
        self.roles = FakeRoleWriter(self.evidence, self.clock)
        self.sink = RecordingSink()
        env = {**BASE_ENV, "TRIAGE_MODE": mode,
               "TRIAGE_ALLOWLIST": json.dumps([{"object_id": o} for o in (*WITNESSED, UNWITNESSED)]),
               "TRIAGE_MAX_GRANTS_PER_DAY": str(DAY_CAP), "TRIAGE_MAX_GRANTS_PER_HOUR": str(HOUR_CAP),
               "TRIAGE_MAX_GRANTS_PER_RUN": str(RUN_CAP), "TRIAGE_INCIDENT_COOLDOWN_MINUTES": "0",
               "TRIAGE_TRUSTED_EVENT_TOPICS": TRUSTED_TOPIC}
        self.instances = [fake_runtime(env, clock=self.clock, store=self.store, sources=[self.source, self.client],
                                       evidence=self.evidence, roles=self.roles, sinks=[self.sink])
                          for _ in range(2)]
        self.writes: list[Write] = []
        # Every revocation: principal, scope, and the writes it was in force for (from index, to index or None).
        self.revoked: list[dict[str, Any]] = []
        self.approving: tuple[str, str, str] | None = None
        self.current_run: int | None = None
        self.shown: dict[str, set[str]] = {}  # incident id -> every fingerprint a recommendation showed
        self.events = 0
        create = self.roles.create

        def recorded_create(**kwargs: Any) -> Any:
            self.writes.append(Write(self.clock.now(), kwargs["principal_id"], kwargs["role_guid"],
                                     kwargs["scope"], self.approving, self.current_run))
            return create(**kwargs)

        self.roles.create = recorded_create  # type: ignore[method-assign]

    def teardown(self) -> None:
        store = getattr(self, "store", None)
        if store is not None:
            store.close()

    # ---- failures ----

    def _failure_data(self, route: str) -> dict[str, Any]:
        path = ROUTES[route]
        return {"endpoint": f"https://aoai.services.ai.azure.com{path}", "time": self.clock.now().isoformat(),
                **({} if route == "openai" else {"message": None})}

    @rule(principal=st.sampled_from(WITNESSED), route=st.sampled_from(sorted(ROUTES)), count=st.integers(1, 3))
    def server_row(self, principal: str, route: str, count: int) -> None:
        message = permission_denied(principal) if route == "openai" else None
        self.source.fail(principal, ACCOUNT, count=count, route=ROUTES[route], operation=None, message=message)

    @rule(principal=st.sampled_from((*WITNESSED, UNWITNESSED)), route=st.sampled_from(sorted(ROUTES)))
    def client_record(self, principal: str, route: str) -> None:
        self.client.fail(principal, ACCOUNT, count=2, endpoint="https://aoai.services.ai.azure.com",
                         route=ROUTES[route], operation=f"POST {ROUTES[route]}",
                         message=permission_denied(principal) if route == "openai" else None)

    @rule(instance=st.integers(0, 1), principal=st.sampled_from((*WITNESSED, UNWITNESSED)),
          route=st.sampled_from(sorted(ROUTES)), trusted=st.booleans())
    def event(self, instance: int, principal: str, route: str, trusted: bool) -> None:
        self.events += 1
        data = self._failure_data(route)
        if trusted and principal in WITNESSED:
            body = topic_failure_event(f"evt-{self.events}", principal, **data)
        else:
            body = failure_event(f"evt-{self.events}", principal, **data)  # a CloudEvent: the publisher's word
        handle_event_safely(self.instances[instance], body)

    @rule(instance=st.integers(0, 1))
    def scan(self, instance: int) -> None:
        report = run_scan(self.instances[instance])
        assert report.grants <= RUN_CAP

    # ---- runs that act long after they began (their snapshot is stale) ----

    @rule(target=runs, instance=st.integers(0, 1))
    def begin_run(self, instance: int) -> tuple[int, RunState]:
        return instance, RunState.begin(self.instances[instance], new_correlation_id())

    @rule(run=runs, principal=st.sampled_from((*WITNESSED, UNWITNESSED)), route=st.sampled_from(sorted(ROUTES)),
          trusted=st.booleans())
    def act_in_an_old_run(self, run: tuple[int, RunState], principal: str, route: str, trusted: bool) -> None:
        instance, state = run
        rt = self.instances[instance]
        self.events += 1
        data = self._failure_data(route)
        event = (topic_failure_event if trusted and principal in WITNESSED else failure_event)(
            f"old-{self.events}", principal, **data)
        parsed = parse_failure_event(event["data"], default_time=self.clock.now())
        signal = parsed.signal  # type: ignore[union-attr]
        pair = (signal.object_id, signal.resource_id)
        rt.refresh_evidence()
        evidence = rt.evidence.gather_evidence({pair})[pair]
        self.current_run = id(state)
        try:
            handle_signal(rt, state, signal, evidence, witness=trusted_topic(rt, envelope_of(event)))
        finally:
            self.current_run = None
        assert state.grants_this_run <= RUN_CAP

    # ---- on-call engineers ----

    @rule(data=st.data(), stale=st.booleans(), instance=st.integers(0, 1))
    def approve_one(self, data: st.DataObject, stale: bool, instance: int) -> None:
        rt = self.instances[instance]
        open_ = sorted((i for i in self.store.list_incidents(inc.RECOMMENDED) if i.approval_terms), key=lambda i: i.id)
        if not open_:
            return
        incident = data.draw(st.sampled_from(open_))
        terms = approval_terms(rt, incident.id)
        old = sorted(self.shown.get(incident.id, set()) - {terms.fingerprint})
        fingerprint = data.draw(st.sampled_from(old)) if stale and old else data.draw(
            st.sampled_from([None, terms.fingerprint]))
        before = len(self.writes)
        self.approving = (terms.principal_id, terms.role_id, normalize_scope(terms.scope))
        try:
            result = approve(rt, incident.id, ALICE, fingerprint=fingerprint)
        except (ActionRefused, NotFound):
            result = None
        finally:
            self.approving = None
        made = self.writes[before:]
        if fingerprint is not None and fingerprint != terms.fingerprint:
            assert result is None and made == []
        if result is not None:
            assert result.grant == terms
            assert len(made) == 1

    @rule(data=st.data())
    def revoke_one(self, data: st.DataObject) -> None:
        granted = sorted((i for i in self.store.list_incidents() if i.assignment_id), key=lambda i: i.id)
        if not granted:
            return
        incident = data.draw(st.sampled_from(granted))
        found = self.evidence.find(incident.assignment_id)
        if found is not None:  # recorded before the delete, whatever comes of it
            self.revoked.append({"principal": found.principal_id, "scope": normalize_scope(found.scope),
                                 "from": len(self.writes), "to": None})
        try:
            revoke(self.instances[0], incident.id, ALICE)
        except ActionRefused:
            pass

    @rule(data=st.data())
    def unrevoke_one(self, data: st.DataObject) -> None:
        current = revocations(self.instances[1])
        if not current:
            return
        lifted = data.draw(st.sampled_from(current))
        unrevoke(self.instances[1], lifted.id, OPERATOR, "reviewed")
        for revoked in self.revoked:
            if (revoked["to"] is None and revoked["principal"] == lifted.principal_id
                    and revoked["scope"] == normalize_scope(lifted.scope)):
                revoked["to"] = len(self.writes)

    @rule(principal=st.sampled_from((*WITNESSED, UNWITNESSED)), role=st.sampled_from(["Reader", "Contributor"]))
    def role_by_hand(self, principal: str, role: str) -> None:
        self.evidence.assign(principal, role, ACCOUNT, age=timedelta(0))

    @rule(minutes=st.sampled_from([1, 3, 11, 45, 61, 60 * 5, 60 * 24 + 1]))
    def time_passes(self, minutes: int) -> None:
        self.clock.advance(minutes=minutes)

    # ---- what must hold after every step ----

    @invariant()
    def remember_what_was_shown(self) -> None:
        """Not a check: every fingerprint a recommendation showed, for approvals that name an old one."""
        if not hasattr(self, "store"):
            return
        for incident in self.store.list_incidents(inc.RECOMMENDED):
            if incident.approval_terms is not None:
                self.shown.setdefault(incident.id, set()).add(incident.approval_terms.fingerprint)

    @invariant()
    def caps_hold(self) -> None:
        if not hasattr(self, "writes"):
            return
        times = [w.at for w in self.writes]
        for at in times:
            assert sum(1 for t in times if at - timedelta(hours=24) < t <= at) <= DAY_CAP
            assert sum(1 for t in times if at - timedelta(hours=1) < t <= at) <= HOUR_CAP
        per_run: dict[int, int] = {}
        for write in self.writes:
            if write.run is not None:
                per_run[write.run] = per_run.get(write.run, 0) + 1
        assert all(n <= RUN_CAP for n in per_run.values())

    @invariant()
    def nothing_revoked_is_granted_again(self) -> None:
        if not hasattr(self, "writes"):
            return
        for index, write in enumerate(self.writes):
            for revoked in self.revoked:
                in_force = revoked["from"] <= index and (revoked["to"] is None or index < revoked["to"])
                if in_force:
                    assert not (write.principal == revoked["principal"]
                                and scopes_overlap(write.scope, revoked["scope"])), (write, revoked)

    @invariant()
    def approvals_grant_what_they_showed_and_witnesses_gate_the_rest(self) -> None:
        if not hasattr(self, "writes"):
            return
        for write in self.writes:
            if write.approval is not None:
                assert (write.principal, write.role, normalize_scope(write.scope)) == write.approval
            elif self.mode == "enforce":
                assert write.principal != UNWITNESSED
            else:
                raise AssertionError(f"recommend mode wrote without an approval: {write}")


Interleavings.TestCase.settings = settings(max_examples=150, stateful_step_count=50, deadline=None,
                                           suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.filter_too_much])
test_interleavings_keep_the_caps_the_revocations_and_the_approvals = Interleavings.TestCase
