-- marathon-lb HAProxy service `lua.getpids` (GET /_haproxy_getpids).
--
-- Answers the PIDs of every running haproxy process, separated by single
-- spaces (zdd and other tools compare them to see that a reload finished).
-- The list comes from `pidof haproxy`; if that gives nothing (no pidof in the
-- image), the answer is at least this worker's own PID from /proc/self/stat.
-- Written for HAProxy 2.6 / Lua 5.3.

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

core.register_service("getpids", "http", function(applet)
  local pids = pidof_haproxy()
  if pids == "" then
    pids = own_pid()
  end
  reply(applet, 200, pids)
end)
