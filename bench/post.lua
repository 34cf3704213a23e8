-- wrk script for `make bench` (bench/run.py): one fixed POST, body and headers from files.
--   BENCH_BODY     path of the JSON body
--   BENCH_HEADERS  path of a file with one "Name: value" header per line
-- The request is built once (no request() function), so wrk sends it without Lua per request.
-- done() prints one JSON line (latencies in microseconds) that run.py parses.

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

wrk.method = "POST"
wrk.path = "/mcp"
wrk.body = slurp(os.getenv("BENCH_BODY"))
for line in slurp(os.getenv("BENCH_HEADERS")):gmatch("[^\r\n]+") do
  local k, v = line:match("^([^:]+):%s*(.-)%s*$")
  if k then wrk.headers[k] = v end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nBENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"err_connect":%d,"err_read":%d,' ..
    '"err_write":%d,"err_status":%d,"err_timeout":%d,"lat_mean":%.1f,"lat_p50":%d,"lat_p90":%d,' ..
    '"lat_p99":%d,"lat_max":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
