"""The official A2A Python SDK's client against abacus over every binding.

For each binding the SDK has a transport for (JSON-RPC, HTTP+JSON, gRPC),
a client that speaks only that binding picks its interface from the agent
card and runs the same four calls against the conformance agent: send (a
completed task), stream (events to the completed state, with the agent's
text), get (the same task back) and cancel (a long task ends canceled).

usage: python_sdk_bindings.py URL [BINDING ...]   (default: all three)
"""

import asyncio
import sys
import uuid

import grpc
import httpx
from a2a.client import ClientConfig, ClientFactory
from a2a.types import (
    CancelTaskRequest,
    GetTaskRequest,
    Message,
    Part,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    TaskState,
)

BINDINGS = ["JSONRPC", "HTTP+JSON", "GRPC"]


def request(prefix: str, wait: bool = True) -> SendMessageRequest:
    """A message whose id picks the conformance agent's scenario."""
    return SendMessageRequest(
        message=Message(
            message_id=f"{prefix}-{uuid.uuid4()}",
            role=Role.ROLE_USER,
            parts=[Part(text="interop")],
        ),
        configuration=SendMessageConfiguration(return_immediately=not wait),
    )


def task_of(event):
    """The task a StreamResponse carries, or None."""
    return event.task if event.HasField("task") else None


async def check(url: str, binding: str) -> list[str]:
    """The failed checks of one binding (empty when all passed)."""
    failed = []
    async with httpx.AsyncClient(timeout=10) as http:
        def config(streaming: bool) -> ClientConfig:
            return ClientConfig(
                httpx_client=http,
                streaming=streaming,
                supported_protocol_bindings=[binding],
                grpc_channel_factory=grpc.aio.insecure_channel,
            )

        client = await ClientFactory(config(False)).create_from_url(url)
        # send: a completed task
        events = [e async for e in client.send_message(request("tck-complete-task"))]
        task = next((task_of(e) for e in events if task_of(e)), None)
        if task is None or task.status.state != TaskState.TASK_STATE_COMPLETED:
            failed.append(f"send: {events}")
        # get: the same task back
        if task is not None:
            got = await client.get_task(GetTaskRequest(id=task.id))
            if got.id != task.id or got.status.state != TaskState.TASK_STATE_COMPLETED:
                failed.append(f"get: {got}")
        # stream: every event to the completed state, the agent's text in it
        streaming = await ClientFactory(config(True)).create_from_url(url)
        events = [e async for e in streaming.send_message(request("tck-stream-001"))]
        states = [e.status_update.status.state for e in events if e.HasField("status_update")]
        texts = [
            p.text
            for e in events
            if e.HasField("artifact_update")
            for p in e.artifact_update.artifact.parts
        ]
        if not states or states[-1] != TaskState.TASK_STATE_COMPLETED or "Stream hello from TCK" not in texts:
            failed.append(f"stream: states {states}, texts {texts}")
        # cancel: a long task, answered at once, ends canceled
        events = [e async for e in client.send_message(request("test-resubscribe-message-id", wait=False))]
        long = next((task_of(e) for e in events if task_of(e)), None)
        if long is None:
            failed.append(f"cancel: no task in {events}")
        else:
            canceled = await client.cancel_task(CancelTaskRequest(id=long.id))
            if canceled.status.state != TaskState.TASK_STATE_CANCELED:
                failed.append(f"cancel: {canceled.status}")
        await client.close()
        await streaming.close()
    return failed


async def main() -> int:
    url = sys.argv[1]
    bindings = sys.argv[2:] or BINDINGS
    failures = 0
    for binding in bindings:
        try:
            failed = await check(url, binding)
        except Exception as e:  # a transport or protocol error fails the binding
            failed = [f"{type(e).__name__}: {e}"]
        failures += bool(failed)
        print(f"{'ok' if not failed else 'FAIL'}: {binding} (send, get, stream, cancel)")
        for f in failed:
            print(f"    {f}")
    print(f"python sdk bindings: {len(bindings) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
