-- marathon-lb HAProxy service `lua.getpids` (GET /_haproxy_getpids).
--
-- Answers the PIDs of this HAProxy's processes, separated by single spaces
-- (zdd and other tools compare them to see that a reload finished: more than
-- a master and one worker means an old worker is still finishing its
-- sessions).
--
-- In master-worker mode with a master CLI (marathon-lb --supervise-haproxy
-- runs `haproxy -W -S ...`), the list is the master's own `show proc`,
-- asked over the master CLI that HAProxy names in HAPROXY_MASTER_CLI: the
-- master, the current worker and every old worker still finishing its
-- sessions, and nothing else (no other HAProxy on the host, no `haproxy -c`
-- check). No process is started.
--
-- Otherwise the list comes from `pidof haproxy`, as marathon-lb answers
-- (under a master without a CLI: only that master and its workers); if
-- pidof gives nothing (no pidof in the image), the answer is at least this
-- worker's own PID from /proc/self/stat. Running pidof means fork() in the
-- HAProxy worker: measured on HAProxy 2.6.12 (two threads, loopback load),
-- about one fork in twenty made a concurrent request fail with a 502 (`SH--`,
-- the server connection closed before the response) — which is why the
-- master CLI is asked whenever there is one.
--
-- Divergence from marathon-lb: the answer is cached for CACHE_SECONDS, so a
-- flood of requests costs at most one `show proc` (or `pidof`) per second
-- instead of one per request. A caller that waits for a reload to finish
-- (zdd) polls anyway and sees the new PIDs at most a second later.
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

-- `show proc` over the master CLI: the PIDs of the master and of every
-- worker (current and old), or nil without a usable master CLI.
local function show_proc()
  local cli = os.getenv("HAPROXY_MASTER_CLI")
  local addr = cli and string.match(cli, "^[^;]+")
  if not addr or addr == "" then
    return nil
  end
  local sock = core.tcp()
  sock:settimeout(1)
  if not sock:connect(addr) then
    sock:close()
    return nil
  end
  sock:send("show proc\n")
  local pids = {}
  local header = false
  while true do
    -- The master ends its answer with an empty line.
    local line = sock:receive("*l")
    if line == nil or line == "" then
      break
    end
    if string.match(line, "^#<PID>") then
      header = true
    end
    local pid, kind = string.match(line, "^(%d+)%s+(%S+)")
    if pid and (kind == "master" or kind == "worker") then
      pids[#pids + 1] = pid
    end
  end
  sock:close()
  if not header or #pids == 0 then
    return nil
  end
  return table.concat(pids, " ")
end

local function current_pids()
  local t = now()
  if cached_pids == nil or t - cached_at >= CACHE_SECONDS or t < cached_at then
    local pids = show_proc() or this_instance(pidof_haproxy())
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
