-- wrk script: POST /v1/events, a purchase with 1-3 items for a member of the pool, with a unique
-- event_id and Idempotency-Key per request. Run by bench/events_api.py; see common.lua for the
-- environment it reads (TALLY_BENCH_POINTS is not used). The pool file repeats its hot members,
-- so they are drawn more often (and reach their caps). Mirrors purchase() in events_api.py:
-- categories, the "sale" label, amounts in cents written as exact decimal strings, occurred_at
-- spread over the last 6 days (weekends included) in UTC.
bench_kind = "events"
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")

local categories = { "beverages", "snacks", "household", "electronics" }
local serial = 0

local function money(cents)
  return string.format("%d.%02d", math.floor(cents / 100), cents % 100)
end

function request()
  serial = serial + 1
  local unique = tag_of_thread() .. "-" .. serial
  local h = headers_of_thread()
  h["Idempotency-Key"] = unique
  local items, total = {}, 0
  for i = 1, math.random(3) do
    local cents = math.random(500, 40000)
    local labels = (math.random(4) == 1) and '["sale"]' or "[]"
    total = total + cents
    items[i] = string.format(
      '{"sku":"sku-%d","amount":"%s","category":"%s","labels":%s}',
      math.random(500), money(cents), categories[math.random(#categories)], labels
    )
  end
  local occurred = os.date("!%Y-%m-%dT%H:%M:%SZ", os.time() - math.random(0, 6 * 86400))
  local body = string.format(
    '{"type":"purchase","event_id":"%s","member_id":%s,"occurred_at":"%s",'
      .. '"amount":{"value":"%s","currency":"CNY"},"items":[%s]}',
    unique, random_member(), occurred, money(total), table.concat(items, ",")
  )
  return wrk.format("POST", "/v1/events", h, body)
end
