-- marathon-lb HAProxy services `lua.getvhostmap` and `lua.getappmap`
-- (GET /_haproxy_getvhostmap, /_haproxy_getappmap).
--
-- Answer the current domain2backend.map / app2backend.map, read at every
-- request from the directory of the configuration file (marathon-lb writes
-- the maps next to haproxy.cfg with --haproxy-map). A missing map is an empty
-- 200 answer: without --haproxy-map there are no maps.
--
-- The configuration path is the first entry of HAPROXY_CFGFILES (set by
-- HAProxy once its configuration is parsed, so it is looked up in
-- core.register_init), else the argument of `-f` in /proc/self/cmdline.
-- Written for HAProxy 2.6 / Lua 5.3.

local map_dir = nil

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

local function find_map_dir()
  local path = config_path()
  if not path then
    return
  end
  -- "/etc/haproxy/haproxy.cfg" -> "/etc/haproxy"; "haproxy.cfg" -> "."
  local dir = string.match(path, "^(.*)/[^/]*$")
  if dir == nil then
    dir = "."
  elseif dir == "" then
    dir = "/"
  end
  map_dir = dir
end

local function read_map(name)
  if not map_dir then
    return ""
  end
  local f = io.open(map_dir .. "/" .. name, "rb")
  if not f then
    return ""
  end
  local text = f:read("a") or ""
  f:close()
  return text
end

local function map_service(name)
  return function(applet)
    local body = read_map(name)
    applet:set_status(200)
    applet:add_header("content-type", "text/plain; charset=utf-8")
    applet:add_header("content-length", tostring(#body))
    applet:start_response()
    applet:send(body)
  end
end

core.register_init(find_map_dir)

core.register_service("getvhostmap", "http", map_service("domain2backend.map"))
core.register_service("getappmap", "http", map_service("app2backend.map"))
