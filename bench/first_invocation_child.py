"""A fresh Function App instance's first two invocations, in a process of its own: one timer, one event.

    python -m bench.first_invocation_child <event.json>

The TRIAGE_* settings (the stand-in's addresses and a static token) come in the environment, as app settings do on
an instance. Nothing of the stand-in or of the benchmarks is imported here: the process pays for what an instance
pays for, from `import function_app` to the event's answer. Prints what both invocations did, as JSON.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime
from pathlib import Path


def main(argv: list[str]) -> int:
    event_file = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    logging.disable(logging.CRITICAL)  # the log sink and the SDKs write lines an instance would ship elsewhere

    from azure.functions import EventGridEvent
    from azure.functions.timer import TimerRequest

    import function_app

    function_app.scan.build().get_user_function()(TimerRequest(past_due=False))
    event = EventGridEvent(id=event_file["id"], data=event_file["data"], topic=event_file["topic"],
                           subject=event_file["subject"], event_type=event_file["event_type"],
                           event_time=datetime.fromisoformat(event_file["event_time"]), data_version="1.0")
    function_app.events.build().get_user_function()(event)

    from shared.bootstrap import get_runtime

    incidents = get_runtime().store.list_incidents()
    print(json.dumps({"incidents": len(incidents)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
