-- wrk script for bench/run.sh.
-- env: METHOD (GET|POST), TEXT (the question; "{n}" is replaced by a counter
-- so every request asks something new), STREAM=1 for SendStreamingMessage,
-- BINDING=rest for the HTTP+JSON binding (POST /message:send or
-- /message:stream with the bare SendMessageRequest; JSON-RPC by default).
-- done() prints one line: "WRKJSON {...}" with requests, errors and latency (ms).
local method = os.getenv("METHOD") or "POST"
local text = os.getenv("TEXT") or "2 + 2"
local rpc = (os.getenv("STREAM") == "1") and "SendStreamingMessage" or "SendMessage"
local unique = string.find(text, "{n}", 1, true) ~= nil
local rest = os.getenv("BINDING") == "rest"
local counter = 0

local function body(t)
  local params = '{"message":{"messageId":"bench","role":"ROLE_USER","parts":[{"text":"' .. t .. '"}]}}'
  if rest then
    return params
  end
  return '{"jsonrpc":"2.0","id":1,"method":"' .. rpc .. '","params":' .. params .. '}'
end

if rest and method == "POST" then
  wrk.path = (os.getenv("STREAM") == "1") and "/message:stream" or "/message:send"
end

wrk.method = method
wrk.headers["A2A-Version"] = "1.0"
if method == "POST" then
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = body(text)
end

function setup(thread)
  thread:set("id", math.random(1, 1000000) * 1000)
end

function request()
  if method == "POST" and unique then
    counter = counter + 1
    local t = string.gsub(text, "{n}", tostring(id + counter))
    return wrk.format(nil, nil, nil, body(t))
  end
  return wrk.format()
end

function done(summary, latency, requests)
  local e = summary.errors
  local errs = e.connect + e.read + e.write + e.status + e.timeout
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_s":%.6f,"rps":%.1f,"errors":%d,"p50_ms":%.3f,"p99_ms":%.3f}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6), errs,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
