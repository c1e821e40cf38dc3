"""The official A2A Python SDK's client against abacus with authentication.

The SDK resolves the agent card, reads its security schemes and sends the
credential its AuthInterceptor finds for one of them: an API key in the
header the card names, or an HTTP bearer token. Each must get the answer;
a client without a credential must get an error, never an answer.

usage: python_sdk_auth.py URL API_KEY BEARER_TOKEN
"""

import asyncio
import sys
import uuid

import httpx
from a2a.client import ClientConfig, ClientFactory
from a2a.client.auth import AuthInterceptor, InMemoryContextCredentialStore
from a2a.client.client import ClientCallContext
from a2a.types import Message, Part, Role, SendMessageRequest


def question(text: str) -> SendMessageRequest:
    return SendMessageRequest(
        message=Message(
            message_id=str(uuid.uuid4()),
            role=Role.ROLE_USER,
            parts=[Part(text=text)],
        )
    )


def texts(event) -> list[str]:
    """Every text part of a StreamResponse (a message or a task's artifacts)."""
    found = []
    if event.HasField("message"):
        found += [p.text for p in event.message.parts if p.text]
    if event.HasField("task"):
        for artifact in event.task.artifacts:
            found += [p.text for p in artifact.parts if p.text]
    return found


async def ask(url: str, scheme: str | None, credential: str | None) -> list[str]:
    store = InMemoryContextCredentialStore()
    context = ClientCallContext(state={"sessionId": "s1"})
    if scheme:
        await store.set_credentials("s1", scheme, credential)
    async with httpx.AsyncClient(timeout=10) as http:
        factory = ClientFactory(ClientConfig(httpx_client=http, streaming=False))
        client = await factory.create_from_url(
            url, interceptors=[AuthInterceptor(store)]
        )
        answers = []
        async for event in client.send_message(question("6 * 7"), context=context):
            answers += texts(event)
        return answers


async def main() -> int:
    url, api_key, token = sys.argv[1:4]
    failures = 0
    for scheme, credential in [("apiKey", api_key), ("bearer", token)]:
        answers = await ask(url, scheme, credential)
        ok = "42" in answers
        failures += not ok
        print(f"{'ok' if ok else 'FAIL'}: {scheme} -> {answers}")
    try:
        answers = await ask(url, None, None)
        failures += 1
        print(f"FAIL: no credential was answered: {answers}")
    except Exception as e:  # the SDK raises on HTTP 401
        print(f"ok: no credential -> {type(e).__name__}: {e}")
    try:
        answers = await ask(url, "apiKey", "not-a-key")
        failures += 1
        print(f"FAIL: a wrong key was answered: {answers}")
    except Exception as e:
        print(f"ok: wrong key -> {type(e).__name__}: {e}")
    print(f"python sdk auth: {4 - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
