-- marathon-lb HAProxy service `lua.getpids` (GET /_haproxy_getpids).
--
-- Answers the PIDs of this HAProxy's processes, separated by single spaces
-- (zdd and other tools compare them to see that a reload finished: more than
-- a master and one worker means an old worker is still finishing its
-- sessions). The list comes from `pidof haproxy`; in master-worker mode
-- (marathon-lb --supervise-haproxy) it keeps only this worker's master and
-- the master's workers, so other HAProxies on the host (and `haproxy -c`
-- checks) do not show up. Otherwise (no master) it is every haproxy process,
-- as marathon-lb answers; if pidof gives nothing (no pidof in the image), the
-- answer is at least this worker's own PID from /proc/self/stat.
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

-- pid, comm and parent pid of a process, from /proc/<pid>/stat
-- ("pid (comm) state ppid ..."; comm may hold spaces and parentheses).
local function stat(pid)
  local f = io.open("/proc/" .. pid .. "/stat", "r")
  if not f then
    return nil
  end
  local line = f:read("l")
  f:close()
  local id, comm, rest = string.match(line or "", "^(%d+) %((.*)%) (.*)$")
  if not rest then
    return nil
  end
  return id, comm, string.match(rest, "^%S+ (%d+)")
end

local function own_pid()
  return (stat("self")) or ""
end

-- In master-worker mode, the PIDs of `pids` (a space-separated list) that
-- are this worker's master or its children; otherwise `pids` unchanged.
local function this_instance(pids)
  local _, comm, master = stat("self")
  if not master then
    return pids
  end
  local _, master_comm = stat(master)
  if master_comm ~= comm then
    return pids
  end
  local kept = {}
  for pid in string.gmatch(pids, "%d+") do
    local _, _, parent = stat(pid)
    if pid == master or parent == master then
      kept[#kept + 1] = pid
    end
  end
  if #kept == 0 then
    return pids
  end
  return table.concat(kept, " ")
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
    local pids = this_instance(pidof_haproxy())
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
