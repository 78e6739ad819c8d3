-- wrk script: a checkout is a hold (POST /v1/members/{id}/holds) then its capture
-- (POST /v1/holds/{hold id}/capture). Run by bench/ledger_api.py; see common.lua for the
-- environment it reads.
--
-- wrk's request() knows nothing of connections, so a thread keeps a queue: each hold answered
-- puts its id in the queue, and the thread's next request captures the oldest queued hold
-- instead of making a new one. Every hold made is captured unless the run ends first.
-- "completed" counts the captures answered 2xx: checkouts/s = completed / duration.
bench_kind = "checkout"
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")

local count_response = response
local queued = {}
local head, tail = 1, 0
local serial = 0
local hold_headers = {}
completed = 0

function request()
  serial = serial + 1
  local unique = tag_of_thread() .. "-" .. serial
  local h = headers_of_thread()
  h["Idempotency-Key"] = unique
  if head <= tail then
    local hold = queued[head]
    queued[head] = nil
    head = head + 1
    return wrk.format("POST", "/v1/holds/" .. hold .. "/capture", h, "{}")
  end
  local member = random_member()
  local body = '{"points":' .. points_of_thread() .. ',"expires_in_seconds":600,"reference":"'
    .. unique .. '"}'
  return wrk.format("POST", "/v1/members/" .. member .. "/holds", h, body)
end

function response(status, resp_headers, body)
  count_response(status, resp_headers, body)
  if status < 200 or status > 299 or not body then
    return
  end
  local state = body:match('"hold":%b{}')
  if not state then
    return
  end
  if state:find('"status":"active"', 1, true) then
    local id = state:match('"id":"([^"]+)"')
    if id then
      tail = tail + 1
      queued[tail] = id
    end
  elseif state:find('"status":"captured"', 1, true) then
    completed = completed + 1
  end
end
