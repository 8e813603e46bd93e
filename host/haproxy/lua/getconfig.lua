-- marathon-lb HAProxy service `lua.getconfig` (GET /_haproxy_getconfig).
--
-- Answers the configuration this HAProxy was started (or last reloaded)
-- with: the file is read once, when the Lua state is initialised, so a newer
-- file on disk that has not been loaded yet is not shown.
--
-- The path is the first entry of HAPROXY_CFGFILES, which HAProxy sets once it
-- has parsed its configuration (hence core.register_init: the variable is not
-- set yet while lua-load runs); without it, the argument of `-f` in
-- /proc/self/cmdline.
--
-- Divergence from marathon-lb: secrets are redacted. The value after
-- `password` / `insecure-password` on a userlist `user` line and the
-- credentials of `stats auth` lines are replaced by <redacted>, so the
-- endpoint no longer hands out password hashes (which can be cracked
-- offline) or plain-text passwords.
-- Written for HAProxy 2.6 / Lua 5.3.

local REDACTED = "<redacted>"

local config_text = nil
local config_error = "configuration not read yet"

local function config_path_from_cmdline()
  local f = io.open("/proc/self/cmdline", "rb")
  if not f then
    return nil
  end
  local raw = f:read("a")
  f:close()
  local args = {}
  for arg in string.gmatch(raw or "", "([^\0]*)\0") do
    args[#args + 1] = arg
  end
  for i, arg in ipairs(args) do
    if arg == "-f" and args[i + 1] then
      return args[i + 1]
    end
  end
  return nil
end

local function config_path()
  local files = os.getenv("HAPROXY_CFGFILES")
  if files and files ~= "" then
    local first = string.match(files, "^([^;]+)")
    if first then
      return first
    end
  end
  return config_path_from_cmdline()
end

-- `line` with its secret replaced by REDACTED (unchanged if it has none).
local function redact_line(line)
  local user, rest = string.match(line, "^(%s*user%s+%S+)(.*)$")
  if user then
    rest = string.gsub(rest, "(%spassword%s+)%S+", "%1" .. REDACTED)
    rest = string.gsub(rest, "(%sinsecure%-password%s+)%S+", "%1" .. REDACTED)
    return user .. rest
  end
  local stats = string.match(line, "^(%s*stats%s+auth%s+)%S")
  if stats then
    return stats .. REDACTED
  end
  return line
end

-- `text` with every secret redacted, line by line.
local function redact(text)
  local out = {}
  for line, nl in string.gmatch(text, "([^\n]*)(\n?)") do
    if line == "" and nl == "" then
      break
    end
    out[#out + 1] = redact_line(line) .. nl
  end
  return table.concat(out)
end

local function read_config()
  local path = config_path()
  if not path then
    config_error = "cannot tell which configuration file HAProxy loaded"
    return
  end
  local f, err = io.open(path, "rb")
  if not f then
    config_error = "cannot read " .. path .. ": " .. tostring(err)
    return
  end
  config_text = redact(f:read("a") or "")
  f:close()
end

local function reply(applet, status, body)
  applet:set_status(status)
  applet:add_header("content-type", "text/plain; charset=utf-8")
  applet:add_header("content-length", tostring(#body))
  applet:start_response()
  applet:send(body)
end

core.register_init(read_config)

core.register_service("getconfig", "http", function(applet)
  if config_text then
    reply(applet, 200, config_text)
  else
    reply(applet, 500, config_error .. "\n")
  end
end)
