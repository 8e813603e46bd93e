-- marathon-lb HAProxy services `lua.signalmlbhup` and `lua.signalmlbusr1`
-- (GET /_mlb_signal/hup, /_mlb_signal/usr1).
--
-- Send SIGHUP (refetch apps and regenerate) or SIGUSR1 (validate and reload
-- the existing config) to marathon-lb. Exactly one process is signalled: the
-- one whose PID is in the pid file (path from MLB_PID_FILE, default
-- /var/run/marathon-lb.pid, written by the container's `run` script), and only
-- if it still is marathon-lb (its command line mentions marathon-lb), so a
-- stale pid file cannot hit an unrelated process that reused the PID.
--
-- 200 "Sent SIGHUP signal to marathon-lb" (resp. SIGUSR1) on success, 500
-- with the reason otherwise. Written for HAProxy 2.6 / Lua 5.3.

local DEFAULT_PID_FILE = "/var/run/marathon-lb.pid"

local function pid_file()
  local path = os.getenv("MLB_PID_FILE")
  if path == nil or path == "" then
    return DEFAULT_PID_FILE
  end
  return path
end

-- The PID in the pid file, or nil and why not.
local function read_pid(path)
  local f, err = io.open(path, "r")
  if not f then
    return nil, "cannot read pid file " .. path .. ": " .. tostring(err)
  end
  local text = f:read("a") or ""
  f:close()
  local pid = string.match(text, "^%s*(%d+)%s*$")
  if not pid then
    return nil, "pid file " .. path .. " does not hold a PID"
  end
  if tonumber(pid) <= 1 then
    return nil, "pid file " .. path .. " holds PID " .. pid .. ", refusing to signal it"
  end
  return pid
end

-- Whether process `pid` exists and is marathon-lb, or false and why not.
local function is_marathon_lb(pid)
  local f = io.open("/proc/" .. pid .. "/cmdline", "rb")
  if not f then
    return false, "marathon-lb (PID " .. pid .. ") is not running"
  end
  local cmdline = f:read("a") or ""
  f:close()
  if not string.find(cmdline, "marathon-lb", 1, true) then
    return false, "PID " .. pid .. " is not marathon-lb (stale pid file?)"
  end
  return true
end

local function reply(applet, status, body)
  applet:set_status(status)
  applet:add_header("content-type", "text/plain; charset=utf-8")
  applet:add_header("content-length", tostring(#body))
  applet:start_response()
  applet:send(body)
end

local function signal_service(signal)
  return function(applet)
    local path = pid_file()
    local pid, err = read_pid(path)
    if not pid then
      reply(applet, 500, "Failed to send SIG" .. signal .. " signal to marathon-lb: " .. err .. "\n")
      return
    end
    local ok, why = is_marathon_lb(pid)
    if not ok then
      reply(applet, 500, "Failed to send SIG" .. signal .. " signal to marathon-lb: " .. why .. "\n")
      return
    end
    -- `pid` is digits only (matched above), so the command line is safe.
    local done, _, code = os.execute("kill -" .. signal .. " " .. pid .. " 2>/dev/null")
    if done then
      reply(applet, 200, "Sent SIG" .. signal .. " signal to marathon-lb\n")
    else
      reply(applet, 500, "Failed to send SIG" .. signal .. " signal to marathon-lb: kill -"
        .. signal .. " " .. pid .. " exited with " .. tostring(code) .. "\n")
    end
  end
end

core.register_service("signalmlbhup", "http", signal_service("HUP"))
core.register_service("signalmlbusr1", "http", signal_service("USR1"))
