-- wrk script: tools/call echo with a unique JSON-RPC id per request; every response is checked.
--
--   wrk -s tools_call.lua URL -- MODE SESSION_ID
--
-- MODE: "legacy" (Mcp-Session-Id), "modern" (2026-07-28 _meta and headers, no session) or
-- "raw" (a plain echo server answering a fixed body). Ids are thread * 1e9 + a per-thread
-- counter, and the echoed text carries the id, so a response is only counted as good when it
-- answers a request this thread sent and still waits for, with that request's own text.
-- done() prints one line, "BENCH {json}", which the bench driver reads.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("tid", #threads)
end

local RAW_EXPECTED = '"text":"ok"'
local MODERN_META = ',"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",'
   .. '"io.modelcontextprotocol/clientCapabilities":{}}'

function init(args)
   mode = args[1] or "legacy"
   counter = 0
   good = 0
   bad = 0
   first_bad = ""
   pending = {}
   headers = {
      ["Content-Type"] = "application/json",
      ["Accept"] = "application/json, text/event-stream",
   }
   meta = ""
   if mode == "modern" then
      headers["MCP-Protocol-Version"] = "2026-07-28"
      headers["Mcp-Method"] = "tools/call"
      headers["Mcp-Name"] = "echo"
      meta = MODERN_META
   elseif mode == "legacy" then
      headers["Mcp-Session-Id"] = args[2]
      headers["MCP-Protocol-Version"] = "2025-11-25"
   end
end

function request()
   counter = counter + 1
   local id = string.format("%d", tid * 1000000000 + counter)
   pending[id] = true
   local body = '{"jsonrpc":"2.0","id":' .. id .. ',"method":"tools/call","params":'
      .. '{"name":"echo","arguments":{"text":"m' .. id .. '"}' .. meta .. '}}'
   return wrk.format("POST", nil, headers, body)
end

local function reject(status, body)
   bad = bad + 1
   if first_bad == "" then
      first_bad = string.format("status %d: %s", status, string.sub(body, 1, 300))
   end
end

function response(status, headers, body)
   if status ~= 200 then
      return reject(status, body)
   end
   if mode == "raw" then
      if string.find(body, RAW_EXPECTED, 1, true) then
         good = good + 1
      else
         reject(status, body)
      end
      return
   end
   local id = string.match(body, '"id":(%d+)')
   if id == nil or not pending[id] then
      return reject(status, body)
   end
   pending[id] = nil
   if string.find(body, '"text":"m' .. id .. '"', 1, true) and not string.find(body, '"error"', 1, true) then
      good = good + 1
   else
      reject(status, body)
   end
end

local function json_string(s)
   s = string.gsub(s, '[%c"\\]', function(c)
      return string.format("\\u%04x", string.byte(c))
   end)
   return '"' .. s .. '"'
end

function done(summary, latency, requests)
   local good_total, bad_total, first = 0, 0, ""
   for _, thread in ipairs(threads) do
      good_total = good_total + thread:get("good")
      bad_total = bad_total + thread:get("bad")
      if first == "" then
         first = thread:get("first_bad")
      end
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH {"requests":%d,"duration_us":%d,"good":%d,"bad":%d,"first_bad":%s,'
         .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
         .. '"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
      summary.requests, summary.duration, good_total, bad_total, json_string(first),
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(99), latency.max))
end
