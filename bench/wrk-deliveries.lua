-- Replays pre-signed deliveries (one per line: webhook-id TAB timestamp TAB signature TAB hex TAB body),
-- each once, starting at INLET_BENCH_OFFSET. wrk's Lua has no HMAC, so signing happens beforehand.
-- With INLET_BENCH_WAIT=1, wrk loads its requests, says BENCH_LOADED and waits for the offset on its
-- standard input before its clock starts: the measured run loads while the warm-up runs and begins the
-- moment it ends, without the pause of a few seconds that loading otherwise takes.
local path = os.getenv("INLET_BENCH_REQUESTS")
local offset = tonumber(os.getenv("INLET_BENCH_OFFSET") or "0")
local wait = os.getenv("INLET_BENCH_WAIT") == "1"
local target = os.getenv("INLET_BENCH_PATH") or "/replicate-webhook"

threads = {}

function setup(thread)
  table.insert(threads, thread)
end

requests = {}
count = 0
sent = 0
first = 0
wrapped = 0

-- Every request is formatted once, up front: request() then allocates nothing, so wrk's Lua GC does
-- not stall the load generator mid-run (it did, and added tens of ms to every server's p99).
function init(args)
  if path ~= nil and path ~= "" then
    for line in io.lines(path) do
      local id, ts, sig, hex, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
      local headers = { ["Content-Type"] = "application/json" }
      if hex ~= "" then
        headers["X-Replicate-Signature"] = hex
      else
        headers["webhook-id"] = id
        headers["webhook-timestamp"] = ts
        headers["webhook-signature"] = sig
      end
      count = count + 1
      requests[count] = wrk.format("POST", target, headers, body)
    end
  end
  if count == 0 then
    count = 1
    requests[1] = wrk.format("POST", target, { ["Content-Type"] = "application/json" }, "{}")
  end
  collectgarbage()
  if wait then
    -- wrk calls init before it starts its threads and its clock: waiting here delays both.
    io.write("BENCH_LOADED\n")
    io.flush()
    offset = assert(tonumber(io.read("*l")))
  end
  first = offset
  sent = offset
end

function request()
  local i = (sent % count) + 1
  if sent >= count then
    wrapped = wrapped + 1
  end
  sent = sent + 1
  return requests[i]
end

function done(summary, latency, requests)
  local total_sent, total_wrapped = 0, 0
  for _, t in ipairs(threads) do
    total_sent = total_sent + (t:get("sent") - t:get("first"))
    total_wrapped = total_wrapped + t:get("wrapped")
  end
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"errors_connect":%d,"errors_read":%d,"errors_write":%d,' ..
    '"errors_status":%d,"errors_timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,' ..
    '"sent":%d,"wrapped":%d}\n',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean, total_sent, total_wrapped))
end
