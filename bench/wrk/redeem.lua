-- wrk script: POST /v1/members/{id}/redeem, unique Idempotency-Key and reference per request.
-- Run by bench/ledger_api.py; see common.lua for the environment it reads.
bench_kind = "redeem"
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")
