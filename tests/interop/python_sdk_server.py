"""An A2A v1.0 agent on the official Python SDK, for interop tests of abacus.

The agent answers a user message with a task: a "working" status with a
progress message, an artifact `echo: <text>` (a data part: `echo: data
<json>`), then completed. Two texts change that, so a client can exercise
the rest of the protocol:
  slow -> works ~30 s, a working status each second (for CancelTask and
          SubscribeToTask)
  ask  -> ends input-required ("what number?"); the next message on that
          task id completes with its echo

Bindings, all on 127.0.0.1 and declared in the card:
  JSON-RPC   http://127.0.0.1:PORT/a2a/jsonrpc
  HTTP+JSON  http://127.0.0.1:PORT/a2a/rest
  gRPC       127.0.0.1:PORT+1   (the SDK's gRPC server is grpc.aio, which
             cannot share the ASGI server's port)

usage: python_sdk_server.py PORT
"""

import asyncio
import json
import sys

import grpc
import uvicorn
from google.protobuf import json_format
from starlette.applications import Starlette

from a2a.helpers import new_task_from_user_message, new_text_message, new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler, GrpcHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes, create_rest_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types import a2a_pb2_grpc
from a2a.types.a2a_pb2 import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    Role,
)

SLOW_SECONDS = 30


def _number(text: str):
    value = float(text)
    return int(value) if value.is_integer() else value


def echo_of(message) -> list:
    """One `echo: ...` text part per part of the user's message."""
    parts = []
    for part in message.parts:
        if part.HasField("data"):
            # Sorted, compact and with whole numbers as integers (a protobuf
            # Value has only doubles), so both SDK servers print the same JSON.
            data = json.loads(json.dumps(json_format.MessageToDict(part.data)), parse_float=_number)
            dumped = json.dumps(data, sort_keys=True, separators=(",", ":"))
            parts.append(new_text_part(f"echo: data {dumped}"))
        elif part.HasField("text"):
            parts.append(new_text_part(f"echo: {part.text}"))
    return parts or [new_text_part("echo:")]


class EchoExecutor(AgentExecutor):
    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        task = context.current_task
        # A follow-up on an input-required task already has its task (the
        # SDK would log and drop a second Task event for it).
        if task is None:
            task = new_task_from_user_message(context.message)
            await event_queue.enqueue_event(task)
        up = TaskUpdater(event_queue, task.id, task.context_id)

        def say(text: str):
            return new_text_message(text, context_id=task.context_id, task_id=task.id, role=Role.ROLE_AGENT)

        text = context.get_user_input().strip()
        # Only a new task asks; the answer on the same task id is echoed.
        if text == "ask" and context.current_task is None:
            await up.requires_input(say("what number?"))
            return
        await up.start_work(say("working on it"))
        if text == "slow":
            # CancelTask cancels this coroutine (CancelledError) after cancel().
            for i in range(SLOW_SECONDS):
                await asyncio.sleep(1)
                await up.start_work(say(f"still working ({i + 1}/{SLOW_SECONDS} s)"))
        await up.add_artifact(echo_of(context.message), name="echo")
        await up.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()


def card(port: int) -> AgentCard:
    base = f"http://127.0.0.1:{port}"
    return AgentCard(
        name="python-sdk-echo",
        description="Echo agent on the official A2A Python SDK (abacus interop fixture)",
        version="1.0.0",
        supported_interfaces=[
            AgentInterface(url=f"{base}/a2a/jsonrpc", protocol_binding="JSONRPC", protocol_version="1.0"),
            AgentInterface(url=f"{base}/a2a/rest", protocol_binding="HTTP+JSON", protocol_version="1.0"),
            AgentInterface(url=f"127.0.0.1:{port + 1}", protocol_binding="GRPC", protocol_version="1.0"),
        ],
        capabilities=AgentCapabilities(streaming=True, push_notifications=False),
        default_input_modes=["text/plain", "application/json"],
        default_output_modes=["text/plain"],
        skills=[
            AgentSkill(
                id="echo",
                name="echo",
                description="Echoes text and data parts; 'slow' runs 30 s, 'ask' asks for input",
                tags=["echo", "test"],
                examples=["hi", "slow", "ask"],
            )
        ],
    )


async def main(port: int) -> None:
    agent_card = card(port)
    handler = DefaultRequestHandler(
        agent_executor=EchoExecutor(), task_store=InMemoryTaskStore(), agent_card=agent_card
    )
    app = Starlette(
        routes=create_agent_card_routes(agent_card)
        + create_jsonrpc_routes(handler, "/a2a/jsonrpc")
        + create_rest_routes(handler, path_prefix="/a2a/rest")
    )
    grpc_server = grpc.aio.server()
    a2a_pb2_grpc.add_A2AServiceServicer_to_server(GrpcHandler(handler), grpc_server)
    grpc_server.add_insecure_port(f"127.0.0.1:{port + 1}")
    await grpc_server.start()
    http = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    print(f"python sdk server: http://127.0.0.1:{port} (gRPC 127.0.0.1:{port + 1})", flush=True)
    try:
        await http.serve()
    finally:
        await grpc_server.stop(0)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python_sdk_server.py PORT")
    asyncio.run(main(int(sys.argv[1])))
