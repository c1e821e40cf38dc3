"""The official A2A Python SDK's client against abacus over every binding.

For each binding the SDK has a transport for (JSON-RPC, HTTP+JSON, gRPC),
a client that speaks only that binding picks its interface from the agent
card and runs the same calls against the conformance agent: send (a
completed task), stream (events to the completed state, with the agent's
text), get (the same task back), cancel (a long task ends canceled), and
push: the four push-config methods, and a message whose config makes the
server POST its task's events to a webhook receiver this script runs on
127.0.0.1 (the server must allow it: --push-allow 127.0.0.1/32
--push-allow-http).

usage: python_sdk_bindings.py URL [BINDING ...]   (default: all three)
"""

import asyncio
import json
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer

import grpc
import httpx
from a2a.client import ClientConfig, ClientFactory
from a2a.types import (
    CancelTaskRequest,
    DeleteTaskPushNotificationConfigRequest,
    GetTaskPushNotificationConfigRequest,
    GetTaskRequest,
    ListTaskPushNotificationConfigsRequest,
    Message,
    Part,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    TaskPushNotificationConfig,
    TaskState,
)

BINDINGS = ["JSONRPC", "HTTP+JSON", "GRPC"]


def request(prefix: str, wait: bool = True, push=None) -> SendMessageRequest:
    """A message whose id picks the conformance agent's scenario."""
    return SendMessageRequest(
        message=Message(
            message_id=f"{prefix}-{uuid.uuid4()}",
            role=Role.ROLE_USER,
            parts=[Part(text="interop")],
        ),
        configuration=SendMessageConfiguration(
            return_immediately=not wait, task_push_notification_config=push
        ),
    )


class Receiver:
    """A webhook receiver on 127.0.0.1: records (headers, JSON body) per POST."""

    def __init__(self):
        got = self.got = []
        ready = self.ready = threading.Condition()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with ready:
                    got.append(({k.lower(): v for k, v in self.headers.items()}, json.loads(body)))
                    ready.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def of_task(self, task_id: str, timeout: float = 10) -> list:
        """The notifications of `task_id` once its completed state came."""
        def done():
            return any(
                b.get("statusUpdate", {}).get("taskId") == task_id
                and b["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"
                for _, b in self.got
            )
        with self.ready:
            self.ready.wait_for(done, timeout)
        return [(h, b) for h, b in self.got if task_id in json.dumps(b)]


async def check_push(client, receiver: Receiver) -> list[str]:
    """The push-config methods, and deliveries to the receiver."""
    failed = []
    events = [e async for e in client.send_message(request("tck-complete-task"))]
    task = next((task_of(e) for e in events if task_of(e)), None)
    if task is None:
        return [f"push: no task in {events}"]
    config = TaskPushNotificationConfig(task_id=task.id, id="sdk-hook", url=receiver.url, token="sdk-token")
    created = await client.create_task_push_notification_config(config)
    if created.id != "sdk-hook" or created.url != receiver.url:
        failed.append(f"push create: {created}")
    got = await client.get_task_push_notification_config(
        GetTaskPushNotificationConfigRequest(task_id=task.id, id="sdk-hook")
    )
    if got.token != "sdk-token":
        failed.append(f"push get: {got}")
    listed = await client.list_task_push_notification_configs(
        ListTaskPushNotificationConfigsRequest(task_id=task.id)
    )
    if [c.id for c in listed.configs] != ["sdk-hook"]:
        failed.append(f"push list: {listed}")
    await client.delete_task_push_notification_config(
        DeleteTaskPushNotificationConfigRequest(task_id=task.id, id="sdk-hook")
    )
    try:
        gone = await client.get_task_push_notification_config(
            GetTaskPushNotificationConfigRequest(task_id=task.id, id="sdk-hook")
        )
        failed.append(f"push delete: still there: {gone}")
    except Exception:  # the SDK raises the server's TaskNotFound
        pass
    # A config in the message: the task's events reach the receiver.
    push = TaskPushNotificationConfig(url=receiver.url, token="sdk-token")
    events = [e async for e in client.send_message(request("tck-complete-task", push=push))]
    task = next((task_of(e) for e in events if task_of(e)), None)
    if task is None:
        return failed + [f"push delivery: no task in {events}"]
    delivered = await asyncio.to_thread(receiver.of_task, task.id)
    if not delivered or any(h.get("x-a2a-notification-token") != "sdk-token" for h, _ in delivered):
        failed.append(f"push delivery: {delivered}")
    return failed


def task_of(event):
    """The task a StreamResponse carries, or None."""
    return event.task if event.HasField("task") else None


async def check(url: str, binding: str, receiver: Receiver) -> list[str]:
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
        failed += await check_push(client, receiver)
        await client.close()
        await streaming.close()
    return failed


async def main() -> int:
    url = sys.argv[1]
    bindings = sys.argv[2:] or BINDINGS
    failures = 0
    receiver = Receiver()
    for binding in bindings:
        try:
            failed = await check(url, binding, receiver)
        except Exception as e:  # a transport or protocol error fails the binding
            failed = [f"{type(e).__name__}: {e}"]
        failures += bool(failed)
        print(f"{'ok' if not failed else 'FAIL'}: {binding} (send, get, stream, cancel, push)")
        for f in failed:
            print(f"    {f}")
    print(f"python sdk bindings: {len(bindings) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
