-- marathon-lb HAProxy service `lua.getpids` (GET /_haproxy_getpids).
--
-- Answers the PIDs of every running haproxy process, separated by single
-- spaces (zdd and other tools compare them to see that a reload finished).
-- The list comes from `pidof haproxy`; if that gives nothing (no pidof in the
-- image), the answer is at least this worker's own PID from /proc/self/stat.
--
-- Divergence from marathon-lb: the answer is cached for CACHE_SECONDS, so a
-- flood of requests costs at most one `pidof` process per second instead of
-- one per request (io.popen blocks the HAProxy thread while pidof runs). A
-- caller that waits for a reload to finish (zdd) polls anyway and sees the
-- new PIDs at most a second later.
-- Written for HAProxy 2.6 / Lua 5.3.

local CACHE_SECONDS = 1.0
local cached_pids = nil
local cached_at = 0

local function trim_pids(text)
  local pids = {}
  for pid in string.gmatch(text or "", "%d+") do
    pids[#pids + 1] = pid
  end
  return table.concat(pids, " ")
end

local function pidof_haproxy()
  local pipe = io.popen("pidof haproxy 2>/dev/null")
  if not pipe then
    return ""
  end
  local out = pipe:read("a")
  pipe:close()
  return trim_pids(out)
end

local function own_pid()
  local f = io.open("/proc/self/stat", "r")
  if not f then
    return ""
  end
  local stat = f:read("l")
  f:close()
  return string.match(stat or "", "^(%d+)") or ""
end

local function reply(applet, status, body)
  applet:set_status(status)
  applet:add_header("content-type", "text/plain; charset=utf-8")
  applet:add_header("content-length", tostring(#body))
  applet:start_response()
  applet:send(body)
end

local function now()
  local t = core.now()
  return t.sec + t.usec / 1000000
end

local function current_pids()
  local t = now()
  if cached_pids == nil or t - cached_at >= CACHE_SECONDS or t < cached_at then
    local pids = pidof_haproxy()
    if pids == "" then
      pids = own_pid()
    end
    cached_pids = pids
    cached_at = t
  end
  return cached_pids
end

core.register_service("getpids", "http", function(applet)
  reply(applet, 200, current_pids())
end)
