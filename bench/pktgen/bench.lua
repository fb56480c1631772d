-- scripts/bench's driver for Pktgen-DPDK 24.07.1 (pktgen ... -- -f bench.lua): range
-- mode, 64-byte TCP from port 0 through the device under test to port 1, and the
-- counters as JSON. Settings come from the environment:
--   PG_MODE        established: ACK packets of PG_IPS x PG_PORTS flows, sent over and over
--                  (the first round creates the device's flow entries)
--                  syn: a SYN per new flow: each start writes PG_COUNT new source
--                  address/port pairs into the TX buffers (the range goes on from where the
--                  last start left it) and sends each buffer once
--   PG_OUT         the JSON written at the end ({"error": ...} on a Lua error)
--   PG_MARK        a file written when the warm-up is done; the run then waits for
--   PG_GO          this file (the harness read the device's counters) before measuring,
--                  and writes PG_MARK again with "stopped" when the measured phase ended
--   PG_QUIT        after the JSON, wait for this file before quitting (the harness stops
--                  the device first: a memif peer may crash when the other side leaves)
--   PG_WARM, PG_DURATION  seconds (established); PG_ROUNDS: measured starts (syn)
--   PG_DST_MAC, PG_VIP, PG_VIP_PORT, PG_SRC_IP (first client), PG_IPS, PG_SPORT, PG_PORTS
--   PG_RX_IP       port 1's address (it answers the device's ARP for the backends)
--   PG_CMDS        a pktgen command file run before the start (range TCP flags)
-- Addresses and ports step together (+1 each per packet, each wrapping on its own), so
-- the flows are lcm(PG_IPS, PG_PORTS) pairs: 100 x 1001 = 100,100 by default.

local function env(n, d)
    local v = os.getenv(n)
    if v == nil or v == "" then return d end
    return v
end

local mode     = env("PG_MODE", "established")
local out      = env("PG_OUT", "pktgen.json")
local mark     = env("PG_MARK", "")
local go       = env("PG_GO", "")
local quitfile = env("PG_QUIT", "")
local warm     = tonumber(env("PG_WARM", "1"))
local duration = tonumber(env("PG_DURATION", "3"))
local rounds   = tonumber(env("PG_ROUNDS", "4"))
local count    = tonumber(env("PG_COUNT", "131071"))
local dmac     = env("PG_DST_MAC", "02:ef:00:00:00:01")
local vip      = env("PG_VIP", "10.10.0.100")
local vport    = tonumber(env("PG_VIP_PORT", "80"))
local ipmin    = env("PG_SRC_IP", "172.16.0.1")
local ips      = tonumber(env("PG_IPS", "100"))
local spmin    = tonumber(env("PG_SPORT", "1024"))
local sports   = tonumber(env("PG_PORTS", "1001"))
local rxip     = env("PG_RX_IP", "10.20.0.11/24")
local cmds     = env("PG_CMDS", "")
local txp, rxp = "0", "1"

local function gcd(a, b) while b ~= 0 do a, b = b, a % b end return a end

local function write_file(path, text)
    local tmp = path .. ".tmp"
    local f = assert(io.open(tmp, "w"))
    f:write(text)
    f:close()
    os.rename(tmp, path) -- atomic: the harness polls for the file
end

local function wait_file(path, seconds)
    for _ = 1, seconds * 100 do
        local h = io.open(path, "r")
        if h then h:close(); return true end
        pktgen.delay(10)
    end
    return false
end

local function ip_add(ip, n)
    local a, b, c, d = ip:match("(%d+)%.(%d+)%.(%d+)%.(%d+)")
    local v = ((tonumber(a) * 256 + tonumber(b)) * 256 + tonumber(c)) * 256 + tonumber(d) + n
    return string.format("%d.%d.%d.%d", (v >> 24) & 255, (v >> 16) & 255, (v >> 8) & 255, v & 255)
end

local function stats(p, kind) return pktgen.portStats(p, kind)[tonumber(p)] end

local function main()
    pktgen.stop(txp)
    for _, p in ipairs({txp, rxp}) do -- memif: up once the device accepted us
        local waited = 0
        while not pktgen.linkState(p)[tonumber(p)]:find("UP") do
            if waited >= 10000 then
                error("port " .. p .. " is down: " .. pktgen.linkState(p)[tonumber(p)])
            end
            pktgen.delay(100)
            waited = waited + 100
        end
    end
    -- Port 1 plays the backends: it answers the device's ARP requests (pktgen answers
    -- any address once input processing is on) and counts what arrives.
    pktgen.set_ipaddr(rxp, "src", rxip)
    pktgen.process(rxp, "on")

    local r = pktgen.range
    r.ip_proto(txp, "tcp")
    r.dst_mac(txp, "start", dmac)
    r.dst_mac(txp, "inc", "00:00:00:00:00:00")
    for _, k in ipairs({"start", "min", "max"}) do
        r.dst_ip(txp, k, vip)
        r.dst_port(txp, k, vport)
        r.pkt_size(txp, k, 64)
    end
    r.dst_ip(txp, "inc", "0.0.0.0")
    r.dst_port(txp, "inc", 0)
    r.pkt_size(txp, "inc", 0)
    r.src_ip(txp, "start", ipmin)
    r.src_ip(txp, "min", ipmin)
    r.src_ip(txp, "max", ip_add(ipmin, ips - 1))
    r.src_ip(txp, "inc", "0.0.0.1")
    r.src_port(txp, "start", spmin)
    r.src_port(txp, "min", spmin)
    r.src_port(txp, "max", spmin + sports - 1)
    r.src_port(txp, "inc", 1)
    if cmds ~= "" then
        pktgen.run("cmd", cmds, "")
    end
    pktgen.set(txp, "rate", 100)
    pktgen.set_range(txp, "on")

    local function send_rounds(n)
        for _ = 1, n do
            pktgen.start(txp)
            local waited = 0
            repeat
                pktgen.delay(5)
                waited = waited + 5
                if waited > 30000 then error("a round of " .. count .. " SYNs took over 30 s") end
            until pktgen.isSending(txp)[tonumber(txp)] ~= "y"
        end
    end

    -- Warm-up, until traffic goes through: the device resolves its backends' MACs (ARP)
    -- on the first packets, and Pktgen writes its TX buffers when it starts (seconds, on
    -- a busy CPU). The port counters tick once a second.
    pktgen.clr()
    pktgen.delay(200)
    local flows = ips * sports // gcd(ips, sports)
    if mode == "syn" then
        pktgen.set(txp, "count", count)
        for _ = 1, 10 do
            local before = stats(rxp, "port").ipackets
            send_rounds(1)
            pktgen.delay(1100)
            if stats(rxp, "port").ipackets - before >= count * 9 // 10 then break end
        end
    else
        pktgen.set(txp, "count", 0) -- forever
        pktgen.start(txp)
        local waited = 0
        while waited < 60000 do
            pktgen.delay(200)
            waited = waited + 200
            -- Two rounds over the flows received: every flow created, then steady.
            if waited >= warm * 1000 and stats(rxp, "port").ipackets >= 2 * flows then break end
        end
    end
    pktgen.delay(100)

    if mark ~= "" then
        write_file(mark, "warm\n")
        if not wait_file(go, 60) then error("no " .. go .. " within 60 s") end
    end
    local tx0, rx0 = stats(txp, "port"), stats(rxp, "port")
    local samples = {}
    if mode == "syn" then
        send_rounds(rounds)
    else
        for _ = 1, duration do
            pktgen.sleep(1)
            local rt, rr = stats(txp, "rate"), stats(rxp, "rate")
            samples[#samples + 1] = string.format('{"tx_pps": %d, "rx_pps": %d}',
                                                  rt.opackets, rr.ipackets)
        end
        pktgen.stop(txp)
    end
    pktgen.delay(100) -- what is in flight arrives
    if mark ~= "" then write_file(mark, "stopped\n") end
    pktgen.delay(1100) -- the port counters tick once a second
    local tx1, rx1 = stats(txp, "port"), stats(rxp, "port")

    write_file(out, string.format([[{
  "tool": "pktgen-24.07.1", "mode": "%s", "flows_per_round": %d,
  "dst": "%s:%d", "src_ip": "%s+%d", "src_port": "%d+%d",
  "measured": {"tx_packets": %d, "rx_packets": %d, "tx_errors": %d, "rx_missed": %d,
               "rx_nombuf": %d},
  "samples": [%s]
}
]], mode, mode == "syn" and count or flows, vip, vport, ipmin, ips, spmin, sports,
        tx1.opackets - tx0.opackets, rx1.ipackets - rx0.ipackets, tx1.oerrors - tx0.oerrors,
        rx1.imissed - rx0.imissed, rx1.rx_nombuf - rx0.rx_nombuf, table.concat(samples, ", ")))
end

local ok, err = pcall(main)
if not ok then
    pcall(pktgen.stop, txp)
    local msg = tostring(err):gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end)
    write_file(out, '{"error": "' .. msg .. '"}\n')
    if mark ~= "" then write_file(mark, "stopped\n") end
end
if quitfile ~= "" then wait_file(quitfile, 60) end
pktgen.quit()
