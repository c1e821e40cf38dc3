// The official A2A JS SDK's client (@a2a-js/sdk) against abacus over every
// binding it has a transport for (JSON-RPC, HTTP+JSON, gRPC).
//
// For each binding, a client that speaks only that binding picks its
// interface from the agent card at URL (the math agent) and checks:
//   send    "6 * 7"         -> a completed task (or a message) saying 42
//   stream  "factorial 20"  -> events through to completed, with the value
//   get     the sent task back, completed
//   cancel  a long task, sent with returnImmediately, ends canceled
// The math agent answers everything within its CPU budget, so the cancel
// check goes to the conformance agent when --cancel-url is given (as
// python_sdk_bindings.py does): its `test-resubscribe-message-id` scenario
// keeps a task working for seconds. The message also carries a slow
// factorisation, so without --cancel-url the math agent gets the same try.
//
// usage: node js_sdk_bindings.mjs URL [--cancel-url URL2] [BINDING ...]
//        (default bindings: JSONRPC HTTP+JSON GRPC)

import { randomUUID } from 'node:crypto';
import { Role, TaskState, taskStateToJSON } from '@a2a-js/sdk';
import { ClientFactory, JsonRpcTransportFactory, RestTransportFactory } from '@a2a-js/sdk/client';
import { GrpcTransportFactory } from '@a2a-js/sdk/client/grpc';

const TRANSPORTS = {
  JSONRPC: () => new JsonRpcTransportFactory(),
  'HTTP+JSON': () => new RestTransportFactory(),
  GRPC: () => new GrpcTransportFactory(),
};
// A product of two random 30-digit primes (60 digits, the math agent's
// most): beyond its quick factoring paths.
const LONG = 'prime factors 268820777879757618408224215559586521729522093378226541007477';
const TIMEOUT_MS = 20_000;

const args = process.argv.slice(2);
const at = args.indexOf('--cancel-url');
const cancelUrl = at >= 0 ? args.splice(at, 2)[1] : undefined;
const [url, ...asked] = args;
if (!url || (at >= 0 && !cancelUrl)) {
  console.error('usage: node js_sdk_bindings.mjs URL [--cancel-url URL2] [BINDING ...]');
  process.exit(2);
}
const bindings = asked.length ? asked : Object.keys(TRANSPORTS);

const request = (text, { idPrefix = 'js-sdk', returnImmediately = false } = {}) => ({
  message: {
    messageId: `${idPrefix}-${randomUUID()}`,
    role: Role.ROLE_USER,
    parts: [{ content: { $case: 'text', value: text }, metadata: undefined, filename: '', mediaType: 'text/plain' }],
    contextId: '', taskId: '', extensions: [], metadata: undefined, referenceTaskIds: [],
  },
  configuration: { acceptedOutputModes: [], returnImmediately },
  metadata: undefined,
  tenant: '',
});

// Every text part the agent wrote anywhere in a result: the answer may sit
// in an artifact, a status message or a direct reply, and the checks do not
// care which (the user's own message in the history is left out).
function texts(value, out = []) {
  if (Array.isArray(value)) value.forEach((v) => texts(v, out));
  else if (value && typeof value === 'object' && value.role !== Role.ROLE_USER) {
    if (value.$case === 'text' && typeof value.value === 'string') out.push(value.value);
    else Object.values(value).forEach((v) => texts(v, out));
  }
  return out;
}

const isMessage = (result) => 'messageId' in result;
const stateName = (s) => taskStateToJSON(s);
const options = () => ({ signal: AbortSignal.timeout(TIMEOUT_MS) });

async function client(cardUrl, binding) {
  const factory = new ClientFactory({ transports: [TRANSPORTS[binding]()] });
  return factory.createFromUrl(cardUrl);
}

// The failed checks of one binding (empty when all passed).
async function check(binding) {
  if (!TRANSPORTS[binding]) return [`unknown binding (the JS SDK has ${Object.keys(TRANSPORTS).join(', ')})`];
  const failed = [];
  const at = { step: `card ${url}` }; // to name the step when a call throws
  try {
    await checks(binding, failed, at);
  } catch (e) { // a transport or protocol error ends the binding's checks
    failed.push(`${at.step}: ${e.name}: ${e.message}${e.cause ? ` (${e.cause.message ?? e.cause})` : ''}`);
  }
  return failed;
}

async function checks(binding, failed, at) {
  const math = await client(url, binding);

  // send: blocking, so the answer is final
  at.step = 'send';
  const sent = await math.sendMessage(request('6 * 7'), options());
  const sentOk = texts(sent).some((t) => t.includes('42'))
    && (isMessage(sent) || sent.status?.state === TaskState.TASK_STATE_COMPLETED);
  if (!sentOk) {
    const what = isMessage(sent) ? 'message' : `task ${stateName(sent.status?.state)}`;
    failed.push(`send "6 * 7": ${what}, texts ${JSON.stringify(texts(sent))}`);
  }

  // stream: every event, the last state completed, the value in some event
  at.step = 'stream';
  const events = [];
  for await (const e of math.sendMessageStream(request('factorial 20'), options())) events.push(e.payload);
  const states = events.flatMap((p) => p.$case === 'statusUpdate' ? [p.value.status?.state]
    : p.$case === 'task' ? [p.value.status?.state] : []);
  const streamed = texts(events).some((t) => t.includes('2432902008176640000'));
  const direct = events.length === 1 && events[0].$case === 'message';
  if (!streamed || (!direct && states.at(-1) !== TaskState.TASK_STATE_COMPLETED)) {
    failed.push(`stream "factorial 20": states [${states.map(stateName)}], texts ${JSON.stringify(texts(events))}`);
  }

  // get: the task of the send (or of the stream when send answered directly)
  const first = events.find((p) => p.$case === 'task' || p.$case === 'statusUpdate');
  const taskId = !isMessage(sent) ? sent.id : first?.value.id ?? first?.value.taskId;
  if (!taskId) failed.push('get: neither send nor stream made a task');
  else {
    at.step = 'get';
    const got = await math.getTask({ id: taskId, historyLength: undefined, tenant: '' }, options());
    if (got.id !== taskId || got.status?.state !== TaskState.TASK_STATE_COMPLETED) {
      failed.push(`get ${taskId}: ${got.id} ${stateName(got.status?.state)}`);
    }
  }

  // cancel: answered at once with a working task, which then ends canceled
  at.step = cancelUrl ? `cancel: card ${cancelUrl}` : 'cancel';
  const slow = cancelUrl ? await client(cancelUrl, binding) : math;
  at.step = 'cancel: send';
  const long = await slow.sendMessage(
    request(LONG, { idPrefix: 'test-resubscribe-message-id', returnImmediately: true }), options());
  if (isMessage(long)) failed.push(`cancel: a message, not a task: ${JSON.stringify(long)}`);
  else {
    try {
      const canceled = await slow.cancelTask({ id: long.id, metadata: undefined, tenant: '' }, options());
      if (canceled.status?.state !== TaskState.TASK_STATE_CANCELED) {
        failed.push(`cancel ${long.id}: state ${stateName(canceled.status?.state)}`);
      }
    } catch (e) {
      failed.push(`cancel ${long.id} (was ${stateName(long.status?.state)} when sent): ${e.message}`);
    }
  }
}

let failures = 0;
for (const binding of bindings) {
  const failed = await check(binding);
  if (failed.length) {
    failures += 1;
    console.log(`FAIL ${binding} (send, stream, get, cancel)`);
    failed.forEach((f) => console.log(`    ${f}`));
  } else {
    console.log(`OK ${binding}`);
  }
}
console.log(`js sdk bindings: ${bindings.length - failures} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
