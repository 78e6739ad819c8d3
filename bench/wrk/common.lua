-- Shared by earn.lua, redeem.lua (POST /v1/members/{id}/<kind>) and checkout.lua, with 32+
-- concurrent clients.
--
-- Set by bench/ledger_api.py through the environment:
--   TALLY_BENCH_KIND      "earn" or "redeem" (earn.lua and redeem.lua set it themselves)
--   TALLY_BENCH_MEMBERS   file with one member id per line (the pool requests are spread over)
--   TALLY_BENCH_TOKEN     API key sent as "Authorization: Bearer <key>"
--   TALLY_BENCH_TAG       run tag; with the thread id and a counter it makes every
--                         Idempotency-Key and reference unique
--   TALLY_BENCH_POINTS    points per request
-- done() prints one line "TALLY_BENCH_RESULT {json}" that ledger_api.py parses.

local kind = bench_kind or os.getenv("TALLY_BENCH_KIND") or "earn"

-- Main state: hand each thread its id and keep the threads to read their counters in done().
local threads = {}
local next_thread_id = 0

function setup(thread)
  next_thread_id = next_thread_id + 1
  thread:set("thread_id", next_thread_id)
  table.insert(threads, thread)
end

-- Thread states -------------------------------------------------------------------------------
local members = {}
local counter = 0
local tag = "run"
local points = "1"
local path_prefix = "/v1/members/"
local path_suffix = "/" .. kind
local headers = {}

-- Counters read by done() through thread:get (plain numbers and strings copy safely).
non2xx = 0
responses = 0
statuses = ""      -- "409:3,500:1"
first_error = ""   -- status and start of the body of the first non-2xx response
local status_counts = {}

function init(args)
  local file = os.getenv("TALLY_BENCH_MEMBERS")
  if not file then
    error("TALLY_BENCH_MEMBERS is not set")
  end
  for line in io.lines(file) do
    local id = line:match("^%s*(%S+)%s*$")
    if id then
      table.insert(members, id)
    end
  end
  if #members == 0 then
    error("no member ids in " .. file)
  end
  tag = (os.getenv("TALLY_BENCH_TAG") or "run") .. "-t" .. tostring(thread_id)
  points = os.getenv("TALLY_BENCH_POINTS") or "1"
  headers["Content-Type"] = "application/json"
  headers["Authorization"] = "Bearer " .. (os.getenv("TALLY_BENCH_TOKEN") or "")
  math.randomseed(os.time() + 7919 * thread_id)
end

-- For checkout.lua, which makes its own requests.
function tag_of_thread() return tag end
function headers_of_thread() return headers end
function points_of_thread() return points end
function random_member() return members[math.random(#members)] end

function request()
  counter = counter + 1
  local unique = tag .. "-" .. counter
  local member = members[math.random(#members)]
  headers["Idempotency-Key"] = unique
  local body = '{"points":' .. points .. ',"reference":"' .. unique .. '"}'
  return wrk.format("POST", path_prefix .. member .. path_suffix, headers, body)
end

function response(status, resp_headers, body)
  responses = responses + 1
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    status_counts[status] = (status_counts[status] or 0) + 1
    local parts = {}
    for code, n in pairs(status_counts) do
      table.insert(parts, code .. ":" .. n)
    end
    statuses = table.concat(parts, ",")
    if first_error == "" then
      first_error = status .. " " .. string.sub(body or "", 1, 300)
    end
  end
end

-- Main state again ------------------------------------------------------------------------------
local function json_string(s)
  s = string.gsub(s, '[%c"\\]', function(c)
    if c == '"' then return '\\"' end
    if c == "\\" then return "\\\\" end
    return string.format("\\u%04x", string.byte(c))
  end)
  return '"' .. s .. '"'
end

function done(summary, latency, requests)
  local total_non2xx, total_responses, total_completed = 0, 0, 0
  local merged = {}
  local first = ""
  for _, thread in ipairs(threads) do
    total_non2xx = total_non2xx + (thread:get("non2xx") or 0)
    total_responses = total_responses + (thread:get("responses") or 0)
    total_completed = total_completed + (thread:get("completed") or 0)
    local s = thread:get("statuses") or ""
    for code, n in string.gmatch(s, "(%d+):(%d+)") do
      merged[code] = (merged[code] or 0) + tonumber(n)
    end
    if first == "" then
      first = thread:get("first_error") or ""
    end
  end
  local status_parts = {}
  for code, n in pairs(merged) do
    table.insert(status_parts, json_string(code) .. ":" .. n)
  end
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    'TALLY_BENCH_RESULT {"kind":%s,"requests":%d,"responses":%d,"duration_s":%.3f,'
      .. '"requests_per_s":%.2f,"p50_ms":%.3f,"p90_ms":%.3f,"p95_ms":%.3f,"p99_ms":%.3f,'
      .. '"max_ms":%.3f,'
      .. '"mean_ms":%.3f,"non2xx":%d,"statuses":{%s},"first_error":%s,'
      .. '"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},'
      .. '"wrk_status_errors":%d,"completed":%d}\n',
    json_string(kind), summary.requests, total_responses, seconds,
    summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, latency.mean / 1000,
    total_non2xx, table.concat(status_parts, ","), json_string(first),
    e.connect, e.read, e.write, e.timeout, e.status, total_completed))
end
