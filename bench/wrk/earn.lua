-- wrk script: POST /v1/members/{id}/earn, unique Idempotency-Key and reference per request.
-- Run by bench/ledger_api.py; see common.lua for the environment it reads.
bench_kind = "earn"
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")
