"""A local stand-in for the Azure services the triage service talks to (never deployed; see docs/localazure.md).

    from localazure import LocalAzure
    with LocalAzure.start("basic") as az:
        ...  # az.arm_url, az.logs_url, az.eventgrid_url, az.ca_path, az.simulate(), az.faults.add(...)
"""

from localazure.clock import Clock
from localazure.credentials import FakeCredential, JwtCredential
from localazure.dataplane import CallSpec, Outcome
from localazure.logshape import LogShape
from localazure.standin import LocalAzure

__all__ = ["CallSpec", "Clock", "FakeCredential", "JwtCredential", "LocalAzure", "LogShape", "Outcome"]
