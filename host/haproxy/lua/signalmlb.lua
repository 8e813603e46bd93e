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
-- with the reason otherwise.
--
-- Divergence from marathon-lb: requests are coalesced. At most one signal of
-- each kind is sent per MIN_INTERVAL seconds; a request within that window is
-- answered 200 "... (coalesced)" at once and a background task sends one
-- signal when the window has passed, so every request is still followed by
-- a signal sent after it (at most MIN_INTERVAL later), but a burst of N
-- requests costs about one signal (and one `kill` process) per second, not
-- N. A worker's window starts closed, so a burst that spans a reload does
-- not get an immediate signal from each new worker. marathon-lb itself coalesces further
-- (--min-reload-interval). Written for HAProxy 2.6 / Lua 5.3.

local DEFAULT_PID_FILE = "/var/run/marathon-lb.pid"
local MIN_INTERVAL = 1.0

-- Per signal: when it was last sent (HAProxy's clock, seconds) and whether a
-- coalesced request is waiting for the window to pass.
local function now()
  local t = core.now()
  return t.sec + t.usec / 1000000
end

-- A new worker (after a reload) starts with its window closed: requests in
-- its first second are coalesced too, so a burst that spans a reload does
-- not get a fresh immediate signal from every new worker.
local signals = {
  HUP = { last = now(), pending = false },
  USR1 = { last = now(), pending = false },
}

local function window_open(state, t)
  return t - state.last >= MIN_INTERVAL or t < state.last
end

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

-- Check the pid file and send `signal`; nil on success, else why not.
local function send(signal)
  local pid, err = read_pid(pid_file())
  if not pid then
    return err
  end
  local ok, why = is_marathon_lb(pid)
  if not ok then
    return why
  end
  signals[signal].last = now()
  -- `pid` is digits only (matched above), so the command line is safe.
  local done, _, code = os.execute("kill -" .. signal .. " " .. pid .. " 2>/dev/null")
  if not done then
    return "kill -" .. signal .. " " .. pid .. " exited with " .. tostring(code)
  end
  return nil
end

local function signal_service(signal)
  return function(applet)
    local state = signals[signal]
    if not window_open(state, now()) then
      -- Fail now, not silently later, when there is nobody to signal.
      local pid, err = read_pid(pid_file())
      if not pid then
        reply(applet, 500, "Failed to send SIG" .. signal .. " signal to marathon-lb: " .. err .. "\n")
        return
      end
      state.pending = true
      reply(applet, 200, "Sent SIG" .. signal .. " signal to marathon-lb (coalesced)\n")
      return
    end
    state.pending = false
    local err = send(signal)
    if err then
      reply(applet, 500, "Failed to send SIG" .. signal .. " signal to marathon-lb: " .. err .. "\n")
    else
      reply(applet, 200, "Sent SIG" .. signal .. " signal to marathon-lb\n")
    end
  end
end

-- Sends the coalesced signals once their window has passed.
local function flush_pending()
  while true do
    core.msleep(100)
    local t = now()
    for signal, state in pairs(signals) do
      if state.pending and window_open(state, t) then
        state.pending = false
        local err = send(signal)
        if err then
          core.Warning("coalesced SIG" .. signal .. " to marathon-lb not sent: " .. err)
        end
      end
    end
  end
end

core.register_task(flush_pending)
core.register_service("signalmlbhup", "http", signal_service("HUP"))
core.register_service("signalmlbusr1", "http", signal_service("USR1"))
