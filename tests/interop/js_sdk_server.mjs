// An A2A v1.0 agent on the official JS SDK (@a2a-js/sdk), for interop tests
// of abacus. The same agent as python_sdk_server.py:
//   any text  -> task: working (with a progress message), artifact
//                `echo: <text>` (a data part: `echo: data <json>`), completed
//   slow      -> works ~30 s, a working status each second (for CancelTask
//                and SubscribeToTask)
//   ask       -> ends input-required ("what number?"); the next message on
//                that task id completes with its echo
//
// Bindings, all on 127.0.0.1 and declared in the card:
//   JSON-RPC   http://127.0.0.1:PORT/a2a/jsonrpc
//   HTTP+JSON  http://127.0.0.1:PORT/a2a/rest
//   gRPC       127.0.0.1:PORT+1   (the SDK's gRPC service runs on grpc-js,
//              its own HTTP/2 server, beside express)
//
// usage: node js_sdk_server.mjs PORT

import { randomUUID, webcrypto } from 'node:crypto';
import express from 'express';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { A2A_PROTOCOL_VERSION, AGENT_CARD_PATH, Role, TaskState } from '@a2a-js/sdk';
import { AgentEvent, DefaultRequestHandler, InMemoryTaskStore } from '@a2a-js/sdk/server';
import { agentCardHandler, jsonRpcHandler, restHandler, UserBuilder } from '@a2a-js/sdk/server/express';
import { A2AService, grpcService } from '@a2a-js/sdk/server/grpc';

const SLOW_SECONDS = 30;

// The SDK calls the global `crypto` (Node >= 19); Debian 12's Node 18 has it
// only as node:crypto's webcrypto.
globalThis.crypto ??= webcrypto;

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || process.argv.length !== 3) {
  console.error('usage: node js_sdk_server.mjs PORT');
  process.exit(2);
}

// The SDK's objects are its generated protobuf types: every field is spelled
// out, as in the SDK's own samples, so no writer meets a missing one.
const textPart = (value) => ({ content: { $case: 'text', value }, metadata: undefined, filename: '', mediaType: '' });

const agentMessage = (text, taskId, contextId) => ({
  role: Role.ROLE_AGENT, messageId: randomUUID(), parts: [textPart(text)],
  taskId, contextId, extensions: [], metadata: {}, referenceTaskIds: [],
});

// Sorted keys, compact: the same JSON python_sdk_server.py prints.
const sorted = (v) => Array.isArray(v) ? v.map(sorted)
  : v && typeof v === 'object' ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted(v[k])]))
  : v;

function echoOf(message) {
  const parts = message.parts.flatMap((p) => {
    if (p.content?.$case === 'data') return [textPart(`echo: data ${JSON.stringify(sorted(p.content.value))}`)];
    if (p.content?.$case === 'text') return [textPart(`echo: ${p.content.value}`)];
    return [];
  });
  return parts.length ? parts : [textPart('echo:')];
}

class EchoExecutor {
  // taskId -> contextId of the tasks that may still be canceled (cancelTask
  // is given only the id), and those a CancelTask asked to stop.
  contexts = new Map();
  canceled = new Set();

  async execute(ctx, bus) {
    const { taskId, contextId } = ctx;
    const message = ctx.userMessage;
    const status = (state, text) => bus.publish(AgentEvent.statusUpdate({
      taskId, contextId, metadata: {},
      status: { state, timestamp: new Date().toISOString(), message: text ? agentMessage(text, taskId, contextId) : undefined },
    }));
    this.contexts.set(taskId, contextId);
    // Every turn starts with a Task event, a follow-up's too (the SDK insists).
    bus.publish(AgentEvent.task(ctx.task ?? {
      id: taskId, contextId, artifacts: [], history: [message], metadata: {},
      status: { state: TaskState.TASK_STATE_SUBMITTED, timestamp: new Date().toISOString(), message: undefined },
    }));
    const text = message.parts.filter((p) => p.content?.$case === 'text').map((p) => p.content.value).join('\n').trim();
    // Only a new task asks; the answer on the same task id is echoed.
    if (text === 'ask' && !ctx.task) {
      status(TaskState.TASK_STATE_INPUT_REQUIRED, 'what number?');
      return;
    }
    status(TaskState.TASK_STATE_WORKING, 'working on it');
    if (text === 'slow') {
      for (let i = 1; i <= SLOW_SECONDS; i++) {
        await new Promise((r) => setTimeout(r, 1000));
        if (this.canceled.delete(taskId)) return;
        status(TaskState.TASK_STATE_WORKING, `still working (${i}/${SLOW_SECONDS} s)`);
      }
    }
    this.contexts.delete(taskId);
    bus.publish(AgentEvent.artifactUpdate({
      taskId, contextId, append: false, lastChunk: true, metadata: undefined,
      artifact: { artifactId: randomUUID(), name: 'echo', description: '', parts: echoOf(message), metadata: undefined, extensions: [] },
    }));
    status(TaskState.TASK_STATE_COMPLETED);
  }

  // The SDK's CancelTask waits for a terminal state on the bus: publish it
  // now rather than at the slow loop's next tick.
  async cancelTask(taskId, bus) {
    const contextId = this.contexts.get(taskId) ?? '';
    this.contexts.delete(taskId);
    this.canceled.add(taskId);
    bus.publish(AgentEvent.statusUpdate({
      taskId, contextId, metadata: {},
      status: { state: TaskState.TASK_STATE_CANCELED, timestamp: new Date().toISOString(), message: undefined },
    }));
  }
}

const iface = (url, protocolBinding) => ({ url, protocolBinding, tenant: '', protocolVersion: A2A_PROTOCOL_VERSION });
const base = `http://127.0.0.1:${port}`;
const card = {
  name: 'js-sdk-echo',
  description: 'Echo agent on the official A2A JS SDK (abacus interop fixture)',
  supportedInterfaces: [
    iface(`${base}/a2a/jsonrpc`, 'JSONRPC'),
    iface(`${base}/a2a/rest`, 'HTTP+JSON'),
    iface(`127.0.0.1:${port + 1}`, 'GRPC'),
  ],
  provider: undefined,
  version: '1.0.0',
  documentationUrl: '',
  capabilities: { streaming: true, pushNotifications: false, extensions: [], extendedAgentCard: false },
  securitySchemes: {},
  securityRequirements: [],
  defaultInputModes: ['text/plain', 'application/json'],
  defaultOutputModes: ['text/plain'],
  skills: [{
    id: 'echo', name: 'echo', description: "Echoes text and data parts; 'slow' runs 30 s, 'ask' asks for input",
    tags: ['echo', 'test'], examples: ['hi', 'slow', 'ask'], inputModes: [], outputModes: [], securityRequirements: [],
  }],
  signatures: [],
};

const taskStore = new InMemoryTaskStore();
const requestHandler = new DefaultRequestHandler(card, taskStore, new EchoExecutor());
const userBuilder = UserBuilder.noAuthentication;

const app = express();
app.use(`/${AGENT_CARD_PATH}`, agentCardHandler({ agentCardProvider: requestHandler }));
app.use('/a2a/jsonrpc', jsonRpcHandler({ requestHandler, userBuilder }));
app.use('/a2a/rest', restHandler({ requestHandler, userBuilder }));

const grpcServer = new Server();
grpcServer.addService(A2AService, grpcService({ requestHandler, userBuilder }));
grpcServer.bindAsync(`127.0.0.1:${port + 1}`, ServerCredentials.createInsecure(), (err) => {
  if (err) {
    console.error(`gRPC bind on 127.0.0.1:${port + 1} failed: ${err.message}`);
    process.exit(1);
  }
  app.listen(port, '127.0.0.1', (e) => {
    if (e) {
      console.error(`listen on 127.0.0.1:${port} failed: ${e.message}`);
      process.exit(1);
    }
    console.log(`js sdk server: ${base} (gRPC 127.0.0.1:${port + 1})`);
  });
});
