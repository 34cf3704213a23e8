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

-- The BENCH_JSON report, shared with the other bench scripts (next to this one).
done = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrk_report.lua")
