-- wrk script of bench/tracker-scale: one kind of device request, paced at a
-- fixed rate over wrk's keep-alive connections, rotating the enrolled
-- devices' credentials.
--
-- wrk -t1 -cN -dS -s bench/tracker-scale.lua URL -- KIND RATE DEVICES_FILE SEQ_BASE TORRENTS HASH...
--   KIND: report | announce | timestamp | root_probe
--   RATE: requests per second offered (0: as fast as the connections go)
--   DEVICES_FILE: one "device_id credential passkey" line per device
--   SEQ_BASE: reports carry seq = SEQ_BASE + round + 1 (round: how many times
--     the rotation went through every device), so each report is new
--   TORRENTS, HASH...: the swarms each device seeds (percent-encoded info-hashes)
--
-- Pacing: every response claims the next slot of one schedule shared by the
-- connections (slot k at start + k / RATE) and waits for it, so the rate
-- offered does not depend on the server's latency; a server that falls behind
-- finds the slots already due and is sent requests as fast as the connections
-- allow (achieved < offered then shows it). Latency is wrk's: from a request's
-- first byte to its response's last.
--
-- done() prints one JSON line: requests, duration, wrk's socket errors, the
-- answers that were not what a device expects (report 204, announce 200
-- without "failure reason", timestamp 200, root probe 404), p50/p99/max.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } tracker_scale_timespec;
int clock_gettime(int clock_id, tracker_scale_timespec *tp);
]]
local timespec = ffi.new("tracker_scale_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, timespec) -- CLOCK_MONOTONIC
  return tonumber(timespec.tv_sec) * 1000 + tonumber(timespec.tv_nsec) / 1e6
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

ids, creds, passkeys = {}, {}, {}
unexpected, failure_reasons = 0, 0
local n, i, interval, seq_base, torrents, hashes, next_due = 0, 0, 0, 0, 1, {}, nil

function init(args)
  kind = args[1]
  local rate = tonumber(args[2])
  interval = rate > 0 and 1000 / rate or 0
  for line in io.lines(args[3]) do
    local id, cred, key = line:match("^(%S+) (%S+) (%S+)$")
    if id then
      n = n + 1
      ids[n], creds[n], passkeys[n] = id, cred, key
    end
  end
  seq_base = tonumber(args[4] or "0")
  torrents = tonumber(args[5] or "1")
  for k = 6, #args do
    hashes[#hashes + 1] = args[k]
  end
  if n == 0 then error("no devices in " .. args[3]) end
end

local report_headers = {["Content-Type"] = "application/json"}

function request()
  local d = i % n + 1
  local round = math.floor(i / n)
  i = i + 1
  if kind == "report" then
    report_headers["Authorization"] = "Bearer " .. creds[d]
    local body = string.format(
      '{"app":"kiosk","release":"7","state":"running","progress":{"done":0,"total":0},' ..
      '"bytes_from_peers":%d,"bytes_from_origin":%d,"health":"healthy","errors":[],"seq":%d}',
      d * 1000, d, seq_base + round + 1)
    return wrk.format("POST", "/api/v1/devices/" .. ids[d] .. "/report", report_headers, body)
  elseif kind == "announce" then
    -- device d's torrent t: every device seeds the same TORRENTS swarms
    local t = round % torrents + 1
    return wrk.format("GET", string.format(
      "/announce/%s?info_hash=%s&peer_id=-FL0001-%012d&port=%d&uploaded=0&downloaded=0" ..
      "&left=0&compact=1&numwant=50", passkeys[d], hashes[t], d, 6881 + d % 1000))
  elseif kind == "timestamp" then
    return wrk.format("GET", "/metadata/timestamp.json")
  else -- root_probe: the TUF client's look for the next root version, 404 until a rotation
    return wrk.format("GET", "/metadata/2.root.json")
  end
end

function delay()
  if interval == 0 then return 0 end
  local now = now_ms()
  if next_due == nil then next_due = now end
  next_due = next_due + interval
  local wait = next_due - now
  if wait < 0 then return 0 end
  return wait
end

local expected = {report = 204, announce = 200, timestamp = 200, root_probe = 404}

function response(status, headers, body)
  if status ~= expected[kind] then
    unexpected = unexpected + 1
  elseif kind == "announce" and body and body:find("failure reason", 1, true) then
    failure_reasons = failure_reasons + 1
    unexpected = unexpected + 1
  end
end

function done(summary, latency, requests)
  local t = threads[1]
  local e = summary.errors
  io.write(string.format(
    '{"kind":"%s","requests":%d,"duration_us":%d,"socket_errors":%d,"unexpected":%d,' ..
    '"failure_reasons":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    t:get("kind"), summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout,
    t:get("unexpected"), t:get("failure_reasons"), latency:percentile(50),
    latency:percentile(99), latency.max))
end
