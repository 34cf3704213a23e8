-- wrk script for `make soak` (bench/soak.py): every request is different. Principals (the
-- x-user header, the soak config's trusted principal header), tool names and task ids are drawn
-- from pools large enough to fill every shared-data table the filter keeps to its bound.
--   SOAK_PRINCIPALS  distinct principals (default 20000)
--   SOAK_TOOLS       distinct tool names (default 5000)
--   SOAK_TASKS       distinct task ids (default 5000)
-- Mix: 80% tools/call (2026-07-28), 8% tools/list, 5% tasks/get, 5% legacy tools/call,
-- 2% tools/call of delete_* (the policy's deny rule).

local principals = tonumber(os.getenv("SOAK_PRINCIPALS") or "20000")
local tools = tonumber(os.getenv("SOAK_TOOLS") or "5000")
local tasks = tonumber(os.getenv("SOAK_TASKS") or "5000")
local META = '"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",' ..
  '"io.modelcontextprotocol/clientCapabilities":{}}'
local n = 0

function setup(thread)
  thread:set("seed", math.random(1, 2 ^ 30))
end

function init(args)
  math.randomseed(seed or os.time())
end

local function modern(user, method, name, params)
  local headers = {
    ["Content-Type"] = "application/json",
    ["Accept"] = "application/json, text/event-stream",
    ["MCP-Protocol-Version"] = "2026-07-28",
    ["Mcp-Method"] = method,
    ["x-user"] = user,
  }
  if name then headers["Mcp-Name"] = name end
  local body = string.format('{"jsonrpc":"2.0","id":%d,"method":"%s","params":{%s%s}}', n, method, params, META)
  return wrk.format("POST", "/mcp", headers, body)
end

function request()
  n = n + 1
  local user = "user-" .. math.random(principals)
  local r = math.random(100)
  if r <= 80 then
    local name = "tool_" .. math.random(tools)
    local args = string.format('"name":"%s","arguments":{"query":"quarterly report %d","limit":%d,"note":"%x"},',
      name, math.random(1000000), math.random(100), math.random(2 ^ 30))
    return modern(user, "tools/call", name, args)
  elseif r <= 88 then
    return modern(user, "tools/list", nil, "")
  elseif r <= 93 then
    return modern(user, "tasks/get", nil, string.format('"taskId":"task-%d",', math.random(tasks)))
  elseif r <= 98 then
    local headers = { ["Content-Type"] = "application/json", ["Accept"] = "application/json, text/event-stream",
      ["MCP-Protocol-Version"] = "2025-11-25", ["x-user"] = user }
    local body = string.format('{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"tool_%d",' ..
      '"arguments":{"query":"legacy %d"}}}', n, math.random(tools), math.random(1000000))
    return wrk.format("POST", "/mcp", headers, body)
  else
    local name = "delete_" .. math.random(tools)
    return modern(user, "tools/call", name, string.format('"name":"%s","arguments":{},', name))
  end
end

-- The BENCH_JSON report, shared with the other bench scripts (next to this one).
done = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrk_report.lua")
