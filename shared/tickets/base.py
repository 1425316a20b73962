"""Ticket sinks: the contract (`shared.core.ports.TicketSink`) and the content and errors they share.

The types live in the core (`shared.core.ticket_model`) so the engine's ports can name them; they are re-exported
here for the sinks.
"""

from __future__ import annotations

from shared.core.ports import TicketSink
from shared.core.ticket_model import TicketAuthError, TicketContent, TicketError, TicketRef

__all__ = ["TicketAuthError", "TicketContent", "TicketError", "TicketRef", "TicketSink"]
