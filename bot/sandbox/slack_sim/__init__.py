"""A faithful, stateful Slack for tests and demos.

`SlackSimulator` serves the Web API (for `AsyncWebClient(base_url=sim.api_url)`), Socket Mode and
`response_url`s on 127.0.0.1, and plays Slack's side towards the bot: signed events, slash commands
and interactions over HTTP, or envelopes over the socket once the bot connected.

    sim = SlackSimulator(signing_secret=SECRET, clock=clock)
    client = AsyncWebClient(token=sim.config.bot_token, base_url=await sim.start())
    sim.add_user("U1", "alice", email="alice@example.com")
    sim.add_channel("G0HELPDESK", "helpdesk", members=[sim.config.bot_user_id, "U2"])
    sim.connect_bot("http://127.0.0.1:PORT/slack/events")    # or AsyncSocketModeHandler(app, app_token)
    await sim.send_dm("U1", "set up my key")
    call = await sim.wait_for("chat.postMessage")
    await sim.click("U1", "reveal")                             # found where U1 can see it
    [modal] = sim.open_views("U1")
    await sim.submit_view("U1", modal.id, {"why": {"text": "lost on the train"}})

Things Slack would refuse from the bot come back as Slack's errors; things Slack accepts but
advises against land in `sim.warnings`; answers Slack would show the user as an error land in
`sim.protocol_errors`. A test that drives something no person could do gets `SimUsageError`
(pass `forge=True` where an abuse test needs it).
"""

from __future__ import annotations

from bot.sandbox.slack_sim.config import DEFAULT_BOT_EVENTS, DEFAULT_SCOPES, SimConfig
from bot.sandbox.slack_sim.entities import (
    ApiCall,
    Delivery,
    DeliveryKind,
    SimChannel,
    SimMessage,
    SimSlackUser,
    SimUsageError,
    SimView,
    Transport,
)
from bot.sandbox.slack_sim.faults import Fault
from bot.sandbox.slack_sim.simulator import SlackSimulator

__all__ = [
    "DEFAULT_BOT_EVENTS",
    "DEFAULT_SCOPES",
    "ApiCall",
    "Delivery",
    "DeliveryKind",
    "Fault",
    "SimChannel",
    "SimConfig",
    "SimMessage",
    "SimSlackUser",
    "SimUsageError",
    "SimView",
    "SlackSimulator",
    "Transport",
]
