-- wrk script for bench/http_load.py: POST one screening request, count answers by status.
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or "")

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  created, other = 0, 0
end

function response(status, headers, body)
  if status == 201 then created = created + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local c, o = 0, 0
  for _, t in ipairs(threads) do
    c = c + t:get("created")
    o = o + t:get("other")
  end
  io.write(string.format("RESULT %d %d %d %d %d %d\n", c, o, latency:percentile(50), latency:percentile(99),
    summary.requests, summary.duration))
end
